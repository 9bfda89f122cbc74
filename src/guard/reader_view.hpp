// What a person reads: turns decoded text into the characters a mail client
// shows, so the guard matches addresses the way a reader would see them.
//
// read_as_person() makes, in one pass over the text:
//  - `text`: markup removed (tags, comments, declarations) when reading as
//    HTML, HTML character references decoded (every WHATWG name, decimal and
//    hex, with or without ';'), then each character brought to its Unicode
//    NFKC_Casefold form (fullwidth and small '@', fullwidth and mathematical
//    letters become ASCII), with format characters (general category Cf:
//    zero-width space and joiners, word joiner, BOM, soft hyphen, bidi
//    controls) and other default-ignorable characters removed. Where markup
//    was removed, `breaks` records the offset: the reader may see the text on
//    either side as joined (`bob<wbr>@x.org`) or apart (`x.org<br>next`), so
//    the scanner treats a break as an optional address boundary;
//  - `hidden`: attribute values and comments, decoded the same way, one per
//    line (a link's `mailto:` or a `title` is shown on hover);
//  - `reversed`: `text` with every right-to-left override (U+202E ... U+202C
//    or the end of the line) shown the way the reader sees it, reversed;
//    empty when there is none.
// Percent-encoding and data: URIs are decoded by the caller (privacy_guard),
// which reads their results again with this function.
//
// NFKC is applied one character at a time (its decomposition and case
// folding; no recomposition): addresses are ASCII in their local parts, and
// domains go through IDNA (which normalises to NFC) before matching. Pure
// ASCII runs are copied as they are; reads_as_written() lets the caller skip
// the pass altogether for text with no markup, references or non-ASCII.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace blindcast::guard {

// Marks where markup was removed in a reader's text (see above).
inline constexpr char k_break = '\x01';

struct ReaderView {
  std::string text;                   // what the reader sees, in logical order, with k_break marks
  std::string hidden;                 // attribute values and comments, '\n'-separated
  std::string reversed;               // `text` with right-to-left overrides applied, or empty

  void clear();
};

// True when reading `text` as a person would changes nothing: no '<', '&'
// and no byte outside ASCII.
bool reads_as_written(std::string_view text);

// False when no reading of `text` can show an address: it holds no '@', no
// fullwidth or small commercial at (U+FF20, U+FE6B: the only characters whose
// NFKC_Casefold form holds '@'), no '&' (a reference), no '%' (percent-
// encoding) and no "data:" URI.
bool could_hold_address(std::string_view text);

// Reads `in` as a mail client shows it into `out` (buffers reused); with
// `html`, markup is removed, otherwise '<' is text.
void read_as_person(std::string_view in, bool html, ReaderView& out);

}  // namespace blindcast::guard
