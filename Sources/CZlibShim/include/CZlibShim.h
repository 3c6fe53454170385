// CZlibShim: zlib for PolyadCompression. zlib's initialisers `deflateInit2` and `inflateInit2` are function-like
// macros (they pass the library version and `sizeof(z_stream)` to `deflateInit2_` / `inflateInit2_`), which Swift
// cannot import; the wrappers below are those macros as functions. Everything else in zlib.h imports directly.
#ifndef POLYAD_CZLIBSHIM_H
#define POLYAD_CZLIBSHIM_H

#include <zlib.h>

/// `deflateInit2(strm, level, Z_DEFLATED, window_bits, mem_level, Z_DEFAULT_STRATEGY)`: a macro in zlib.h.
/// `window_bits` 9...15 gives the zlib format (RFC 1950), -15...-9 raw deflate. Returns a zlib status (Z_OK).
int polyad_deflate_init2(z_streamp strm, int level, int window_bits, int mem_level);

/// `inflateInit2(strm, window_bits)`: a macro in zlib.h. Returns a zlib status (Z_OK).
int polyad_inflate_init2(z_streamp strm, int window_bits);

#endif
