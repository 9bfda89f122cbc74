#!/usr/bin/perl
# The second peer of the bounces benchmark: Sisimai 4.25 (Debian's
# libsisimai-perl), which like blindcast classifies each failure (reason,
# hard/soft). Every file is read once; then, for at least SECONDS, each is
# parsed in-process from memory (make() takes a scalar ref), so no file I/O
# is measured. Prints one line of JSON.
# Usage: perl bench/perl_sisimai.pl SECONDS FILE...
use strict;
use warnings;
use Sisimai;
use Time::HiRes qw(time);

my $seconds = shift @ARGV;
my @messages;
for my $path (@ARGV) {
    open(my $fh, '<:raw', $path) or next;
    local $/;
    push @messages, scalar <$fh>;
    close $fh;
}
die "no files\n" unless @messages;
my ($parsed, $recipients, $unparsed) = (0, 0, 0);
my $t0 = time;
my $elapsed;
while (1) {
    for my $raw (@messages) {
        my $data = Sisimai->make(\$raw);
        if ($data) { $recipients += scalar @$data } else { $unparsed++ }
        $parsed++;
    }
    $elapsed = time - $t0;
    last if $elapsed >= $seconds;
}
my $rounds = $parsed / scalar @messages;
printf "{\"bench\": \"sisimai\", \"version\": \"%s\", \"files\": %d, \"messages\": %d, \"recipients\": %d, "
     . "\"unparsed_per_round\": %d, \"seconds\": %.2f, \"per_second\": %.0f}\n",
    $Sisimai::VERSION, scalar @messages, $parsed, $recipients, $unparsed / $rounds, $elapsed, $parsed / $elapsed;
