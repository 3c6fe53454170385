#ifndef C_FUSE_SHIM_H
#define C_FUSE_SHIM_H

// libfuse 3 low-level API for the polyadfs driver. FUSE_USE_VERSION selects the 3.12+ API (versions are
// major*100+minor since 3.12). Do not define _FILE_OFFSET_BITS here: it clashes with Swift's Glibc module,
// and 64-bit offsets are the default on 64-bit Linux anyway.
#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

/// Why a shim: in libfuse >= 3.17 `fuse_session_new` and `fuse_session_loop_mt` are macros over versioned
/// symbols, and `FUSE_ARGS_INIT` is a macro on every version; these functions build on Debian's 3.14 and on
/// newer releases alike. `argv` is copied by libfuse's option parser.
struct fuse_session *polyad_fuse_session_new(int argc, char **argv, const struct fuse_lowlevel_ops *ops,
                                             void *userdata);

/// Runs the multi-threaded loop (at most `max_threads` workers) until the session exits (unmount or signal).
int polyad_fuse_session_loop_mt(struct fuse_session *se, unsigned int max_threads);

/// Why a shim: `keep_cache` is a bit-field of `struct fuse_file_info`.
void polyad_fuse_file_info_keep_cache(struct fuse_file_info *fi);

/// Large reads and read-ahead (up to `max_io` bytes) where the kernel allows them.
void polyad_fuse_conn_configure(struct fuse_conn_info *conn, unsigned int max_io);

#endif
