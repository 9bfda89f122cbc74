// What a person reads: turns decoded text into the characters a mail client
// shows, so the guard matches addresses the way a reader would see them.
//
// read_as_person() makes, in one pass over the text:
//  - `text`: when reading as HTML, markup removed the way an HTML parser
//    (WHATWG) tokenizes it — any `<` + letter opens a tag up to white space,
//    '/' or '>'; `</` + other starts a bogus comment; `<!-->` and `--!>` end
//    comments; CDATA sections are read as text — and the content of elements
//    a reader never sees (script, style, title, template, iframe, and
//    elements with `hidden` or an inline style that hides them) moved to
//    `hidden`; an image's `alt` text read where the image stands (mail
//    clients show it when images are blocked). Then HTML character
//    references decoded (every WHATWG name, decimal and hex with or without
//    ';', 0x80-0x9F as windows-1252 like browsers), and each character
//    brought to its NFKC form (fullwidth and small '@', fullwidth,
//    mathematical and circled letters become ASCII) with format characters
//    (Cf: zero-width space and joiners, word joiner, BOM, soft hyphen, bidi
//    controls) and other default-ignorable characters removed. No case
//    folding: U-label domains go through IDNA (UTS #46) before matching,
//    which keeps ß and ς apart from ss and σ as mailbox providers do.
//    Markup that cannot separate text (a comment; an inline formatting tag
//    such as <b>, <span> or <wbr> without attributes) vanishes:
//    `john.<b>smith</b>@` reads `john.smith@`. Other markup (a block such as
//    <p> or <br>, a tag with attributes, which CSS may make a block) leaves
//    k_break, as does a switch between characters NFKC changed and ASCII
//    left alone (`bob@example.org²` ends at "org"): the reader may see the
//    text on either side joined or apart, so the scanner treats k_break as
//    an optional address boundary. k_break survives the decoding the caller
//    does afterwards (percent, reordering).
//  - `hidden`: attribute names and values (tab and line breaks removed, as
//    URL parsers do), comments, the content of hidden elements, and the
//    strings of style sheets (CSS escapes decoded, adjacent strings joined:
//    `content: "bob" "@" "x.org"`), one per line;
//  - `visual`, `hidden_visual`: the same texts in the order a reader sees
//    them when they hold bidirectional controls or right-to-left text (the
//    Unicode Bidirectional Algorithm, ICU ubidi, with <bdo dir=rtl> and CSS
//    `unicode-bidi: bidi-override; direction: rtl` as overrides); empty
//    when there are none;
//  - `unmarked`: `text` with combining marks on ASCII letters removed
//    (`b̲o̲b̲@`), when there are any; empty otherwise (marks stay in `text`
//    so that a decomposed U-label still matches).
// Percent-encoding and data: URIs are decoded by the caller (privacy_guard),
// which reads their results again with this function.
//
// NFKC is applied one character at a time (its decomposition; composition
// is left to IDNA, which normalises to NFC). Pure ASCII runs are copied as
// they are; reads_as_written() lets the caller skip the pass altogether for
// text with no markup, references or non-ASCII.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::guard {

// Marks where markup was removed in a reader's text (see above).
inline constexpr char k_break = '\x01';

struct ReaderView {
  std::string text;           // what the reader sees, in logical order, with k_break marks
  std::string hidden;         // attributes, comments, hidden content, style sheet strings, '\n'-separated
  std::string visual;         // `text` as displayed (bidi applied), or empty
  std::string hidden_visual;  // `hidden` as displayed, or empty
  std::string unmarked;       // `text` without combining marks on ASCII letters, or empty

  void clear();
};

// True when reading `text` as a person would changes nothing: no '&', no
// byte outside ASCII, and (when `html`) no '<'.
bool reads_as_written(std::string_view text, bool html);

// False when no reading of `text` can show an address: it holds no '@', no
// fullwidth or small commercial at (U+FF20, U+FE6B: the only characters whose
// NFKC form holds '@'), no '&' (a reference), no '%' (percent-encoding) and
// no "data:" URI.
bool could_hold_address(std::string_view text);

// False when reading `text` as HTML (markup removed) cannot show an address:
// nothing outside its tags, alt text and CDATA could start one. Plain text
// holding markup ("Name <bob@x.org>") is read both ways only when true.
bool markup_removed_could_hold_address(std::string_view text);

// Reads `in` as a mail client shows it into `out` (buffers reused); with
// `html`, markup is removed, otherwise '<' is text.
void read_as_person(std::string_view in, bool html, ReaderView& out);

}  // namespace blindcast::guard
