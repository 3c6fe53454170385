#include "CFuseShim.h"
#include <stddef.h>

struct fuse_session *polyad_fuse_session_new(int argc, char **argv, const struct fuse_lowlevel_ops *ops,
                                             void *userdata) {
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_session *se = fuse_session_new(&args, ops, sizeof(*ops), userdata);
    fuse_opt_free_args(&args);
    return se;
}

int polyad_fuse_session_loop_mt(struct fuse_session *se, unsigned int max_threads) {
    struct fuse_loop_config *config = fuse_loop_cfg_create();
    if (config == NULL) return -1;
    fuse_loop_cfg_set_clone_fd(config, 0);
    fuse_loop_cfg_set_max_threads(config, max_threads);
    fuse_loop_cfg_set_idle_threads(config, max_threads);
    int status = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
    return status;
}

void polyad_fuse_file_info_keep_cache(struct fuse_file_info *fi) { fi->keep_cache = 1; }

void polyad_fuse_conn_configure(struct fuse_conn_info *conn, unsigned int max_io) {
    if (conn->max_readahead < max_io) conn->max_readahead = max_io;
    conn->max_write = max_io;   // libfuse derives the kernel's max_pages (largest request) from it
    conn->max_read = max_io;
    if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
}
