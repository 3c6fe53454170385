#include "CFuseShim.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fuse_session *polyad_fuse_session_new(int argc, char **argv, const struct fuse_lowlevel_ops *ops,
                                             void *userdata) {
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_session *se = fuse_session_new(&args, ops, sizeof(*ops), userdata);
    fuse_opt_free_args(&args);
    return se;
}

// MARK: The request loop
//
// One worker at a time holds the reader token: it alone reads /dev/fuse, so a request wakes exactly one
// thread and never a herd. It answers cheap requests itself and keeps reading; before slow work (a chunk or
// tree from the store) the request's handler calls polyad_fuse_worker_will_block(), which passes the token
// to an idle worker so that other requests go on meanwhile. Between requests the token holder polls the
// device without sleeping for a short while: a request that follows closely (a walk, a file read request by
// request) is taken without a cross-CPU wake-up, which on virtual machines costs tens of microseconds.

struct polyad_loop {
    struct fuse_session *se;
    int fd;
    long long spin_ns;
    pthread_mutex_t lock;
    pthread_cond_t token_free;
    int token_taken;        // under `lock`
    int stopping;           // under `lock`
    atomic_int failure;     // the first read error other than EINTR/EAGAIN (negative errno), or 0
    sem_t finished;
};

static _Thread_local struct polyad_loop *polyad_current_loop;
static _Thread_local int polyad_holds_token;

static long long polyad_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void polyad_release_token(struct polyad_loop *loop) {
    pthread_mutex_lock(&loop->lock);
    loop->token_taken = 0;
    pthread_cond_signal(&loop->token_free);
    pthread_mutex_unlock(&loop->lock);
    polyad_holds_token = 0;
}

void polyad_fuse_worker_will_block(void) {
    if (polyad_current_loop != NULL && polyad_holds_token) polyad_release_token(polyad_current_loop);
}

/// Takes the reader token; returns 0 once the loop is stopping.
static int polyad_take_token(struct polyad_loop *loop) {
    pthread_mutex_lock(&loop->lock);
    while (loop->token_taken && !loop->stopping) pthread_cond_wait(&loop->token_free, &loop->lock);
    int ok = !loop->stopping;
    if (ok) loop->token_taken = 1;
    pthread_mutex_unlock(&loop->lock);
    polyad_holds_token = ok;
    return ok;
}

static void polyad_stop(struct polyad_loop *loop) {
    fuse_session_exit(loop->se);
    pthread_mutex_lock(&loop->lock);
    loop->stopping = 1;
    pthread_cond_broadcast(&loop->token_free);
    pthread_mutex_unlock(&loop->lock);
    sem_post(&loop->finished);
}

/// Polls the device without sleeping for at most `spin_ns`, giving the CPU to any runnable thread first.
static void polyad_spin_for_request(struct polyad_loop *loop) {
    if (loop->spin_ns <= 0) return;
    long long deadline = polyad_now_ns() + loop->spin_ns;
    struct pollfd p = { .fd = loop->fd, .events = POLLIN };
    while (!fuse_session_exited(loop->se)) {
        p.revents = 0;
        if (poll(&p, 1, 0) != 0 || polyad_now_ns() >= deadline) return;
        sched_yield();
    }
}

static void *polyad_worker(void *arg) {
    struct polyad_loop *loop = arg;
    polyad_current_loop = loop;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    struct fuse_buf buf;
    memset(&buf, 0, sizeof(buf));
    while (!fuse_session_exited(loop->se)) {
        if (!polyad_holds_token && !polyad_take_token(loop)) break;
        // Only the token holder blocks here, and only here may it be cancelled (it holds no lock).
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        polyad_spin_for_request(loop);
        int res = fuse_session_receive_buf(loop->se, &buf);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        if (res == -EINTR || res == -EAGAIN) continue;
        if (res <= 0) {
            if (res < 0) {
                int none = 0;
                atomic_compare_exchange_strong(&loop->failure, &none, res);
            }
            polyad_stop(loop);
            break;
        }
        fuse_session_process_buf(loop->se, &buf);
    }
    free(buf.mem);
    polyad_current_loop = NULL;
    sem_post(&loop->finished);
    return NULL;
}

int polyad_fuse_session_loop(struct fuse_session *se, unsigned int threads, unsigned int spin_microseconds) {
    struct polyad_loop loop = { .se = se, .fd = fuse_session_fd(se),
                                .spin_ns = (long long)spin_microseconds * 1000 };
    atomic_init(&loop.failure, 0);
    if (threads == 0) threads = 1;
    pthread_mutex_init(&loop.lock, NULL);
    pthread_cond_init(&loop.token_free, NULL);
    sem_init(&loop.finished, 0, 0);
    pthread_t *ids = calloc(threads, sizeof(pthread_t));
    if (ids == NULL) return -ENOMEM;

    // Workers block the signals that end the session, so they reach this thread's sem_wait (as in libfuse).
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    unsigned int started = 0;
    for (; started < threads; started++) {
        if (pthread_create(&ids[started], NULL, polyad_worker, &loop) != 0) break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    // Until the session ends: unmount (the reader sees ENODEV) or a signal (libfuse's handler marks it exited).
    while (started > 0 && !fuse_session_exited(se)) sem_wait(&loop.finished);
    polyad_stop(&loop);
    for (unsigned int i = 0; i < started; i++) pthread_cancel(ids[i]);
    for (unsigned int i = 0; i < started; i++) pthread_join(ids[i], NULL);
    free(ids);
    sem_destroy(&loop.finished);
    pthread_cond_destroy(&loop.token_free);
    pthread_mutex_destroy(&loop.lock);
    return started == 0 ? -EAGAIN : atomic_load(&loop.failure);
}

int polyad_fuse_notify_store(struct fuse_session *se, fuse_ino_t ino, const void *data, size_t size) {
    struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(size);
    bufv.buf[0].mem = (void *)data;
    return fuse_lowlevel_notify_store(se, ino, 0, &bufv, 0);
}

void polyad_fuse_file_info_keep_cache(struct fuse_file_info *fi) { fi->keep_cache = 1; }

void polyad_fuse_file_info_direct_io(struct fuse_file_info *fi) { fi->direct_io = 1; }

void polyad_fuse_file_info_cache_dir(struct fuse_file_info *fi) {
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
}

void polyad_fuse_conn_configure(struct fuse_conn_info *conn, unsigned int max_io) {
    if (conn->max_readahead < max_io) conn->max_readahead = max_io;
    conn->max_write = max_io;   // libfuse derives the kernel's max_pages (largest request) from it
    conn->max_read = max_io;
    if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
    // Always readdirplus (not the kernel's adaptive choice): a walk that opens the files it lists (`find |
    // xargs cat`, `cp -r`) then needs no LOOKUP per name.
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    // Symlink targets stay in the kernel's page cache (`latest` gets a new inode when it changes).
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
}
