"""What operators install: the man page and the bash and zsh completions,
generated from the command line's definitions, and a .deb that holds the
binary, the man page and both completions."""
import os
import shutil
import subprocess
import tempfile

import support
from support import run

COMMANDS = ["init", "lint", "preview", "plan", "send", "approve", "status", "halt", "release", "demo",
            "suppress import", "suppress list", "suppress remove"]


def complete(script, *words):
    """COMPREPLY of the bash completion for the command line `words` (the last one being typed)."""
    line = " ".join(words)
    prog = (f"source {script}\n"
            f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
            "_blindcast\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, check=True)
    return out.stdout.split()


class Packaging(support.Case):
    def test_man_page_lists_every_command_and_formats_without_warnings(self):
        page = run("manpage", check=0).stdout
        for c in COMMANDS:
            self.assertIn(f'.SS "{c}"', page)
        self.assertIn("\\-\\-retry\\-failed", page)
        out = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page, capture_output=True, text=True)
        self.assertEqual(out.returncode, 0)
        self.assertEqual(out.stderr, "", "groff warnings")

    def test_bash_completion_completes_commands_subcommands_and_options(self):
        script = os.path.join(self.tmp, "blindcast.bash")
        with open(script, "w") as f:
            f.write(run("completion", "bash", check=0).stdout)
        self.assertEqual(complete(script, "blindcast", "se"), ["send", "serve"])
        self.assertEqual(sorted(complete(script, "blindcast", "send", "c", "--st")), ["--stage", "--state"])
        self.assertEqual(complete(script, "blindcast", "suppress", "im"), ["import"])
        self.assertIn("--show-addresses", complete(script, "blindcast", "suppress", "list", "c", "--sh"))
        self.assertIn("--dkim", complete(script, "blindcast", "init", "c", "--d"))

    def test_zsh_completion_is_valid_zsh(self):
        script = os.path.join(self.tmp, "_blindcast")
        with open(script, "w") as f:
            f.write(run("completion", "zsh", check=0).stdout)
        out = subprocess.run(["zsh", "-n", script], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(run("completion", "fish").returncode, 2)

    def test_the_deb_holds_binary_man_page_and_completions(self):
        build = os.path.dirname(support.BINARY)
        out_dir = tempfile.mkdtemp(prefix="blindcast-deb-", dir=self.tmp)
        proc = subprocess.run(["cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"),
                               "-B", out_dir], capture_output=True, text=True, cwd=build, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        debs = [f for f in os.listdir(out_dir) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(out_dir))
        deb = os.path.join(out_dir, debs[0])
        listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
        for path in ("./usr/bin/blindcast", "./usr/share/man/man1/blindcast.1",
                     "./usr/share/bash-completion/completions/blindcast",
                     "./usr/share/zsh/vendor-completions/_blindcast", "./usr/lib/systemd/system/blindcast.service"):
            self.assertIn(path, listing)
        depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True,
                                 check=True).stdout
        for lib in ("libicu", "libsqlite3", "libssl", "libcpp-httplib"):
            self.assertIn(lib, depends)
        shutil.rmtree(out_dir)

    def test_the_systemd_unit_is_valid_and_confined(self):
        unit = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging", "systemd",
                            "blindcast.service")
        text = open(unit).read()
        for setting in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=blindcast",
                        "ExecStart=/usr/bin/blindcast serve --config /etc/blindcast/server.toml"):
            self.assertIn(setting, text)
        if shutil.which("systemd-analyze"):
            proc = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
            # The binary and its man page are not installed where the test runs; nothing else may be wrong.
            problems = [l for l in (proc.stdout + proc.stderr).splitlines()
                        if l.strip() and "is not executable" not in l and "man blindcast" not in l]
            self.assertEqual(problems, [], proc.stdout + proc.stderr)


if __name__ == "__main__":
    support.main()
