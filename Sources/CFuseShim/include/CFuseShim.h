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

/// Serves requests on `threads` workers until the session exits (unmount, or a signal caught by libfuse's
/// handlers); returns 0, or a negative errno if reading the device failed. One worker at a time reads the
/// device and answers cheap requests itself; between requests it polls without sleeping for up to
/// `spin_microseconds`, so a request that follows closely is taken without a cross-CPU wake-up.
int polyad_fuse_session_loop(struct fuse_session *se, unsigned int threads, unsigned int spin_microseconds);

/// Called by a request handler (on a loop worker) before slow work, such as reading and decoding from the
/// store: another worker takes over reading requests meanwhile. Does nothing on other threads.
void polyad_fuse_worker_will_block(void);

/// Puts a file's bytes (from offset 0) into the kernel's page cache for inode `ino`, so that reading them
/// needs no request. Why a shim: `FUSE_BUFVEC_INIT` is a macro.
int polyad_fuse_notify_store(struct fuse_session *se, fuse_ino_t ino, const void *data, size_t size);

/// Why a shim: `keep_cache` is a bit-field of `struct fuse_file_info`.
void polyad_fuse_file_info_keep_cache(struct fuse_file_info *fi);

/// Reads bypass the page cache and the size the kernel knows (content generated at open, whose size may
/// differ from the last `getattr`). Why a shim: `direct_io` is a bit-field.
void polyad_fuse_file_info_direct_io(struct fuse_file_info *fi);

/// Lets the kernel keep a folder's listing across opens (`cache_readdir` and `keep_cache`): it still sends
/// OPENDIR, where access is checked, but reads the entries from its cache.
void polyad_fuse_file_info_cache_dir(struct fuse_file_info *fi);

/// Large reads and read-ahead (up to `max_io` bytes) where the kernel allows them.
void polyad_fuse_conn_configure(struct fuse_conn_info *conn, unsigned int max_io);

#endif
