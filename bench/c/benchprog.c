/* Small programs for the benchmarks, compiled by bench/run.py into a temporary directory.
 *
 *   benchprog catch FIFO
 *       Install a SIGUSR1 handler that reads CLOCK_MONOTONIC and write()s the 8-byte time to FIFO
 *       (write is async-signal-safe); write one zero record once the handler is installed, then
 *       pause() forever; SIGUSR2 makes it exit 0 (so a wrapper under a profiler exits normally).
 *       This is "the program" behind the supervisor, tini or dumb-init.
 *   benchprog send PID SIG N GAP_US FIFO [again]
 *       N times: t0 = CLOCK_MONOTONIC; kill(PID, SIG); read the handler's time t1 from FIFO;
 *       print t1 - t0 in nanoseconds; sleep GAP_US. PID is the supervisor (or tini, dumb-init,
 *       or the catcher itself for the floor). Both ends use the same clock.
 *   benchprog job
 *       A tiny checkpointing job: create ./ready, then on SIGUSR1 write ./ck.tmp and rename it
 *       to ./ck (an atomic checkpoint); SIGTERM ends it (default action).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int out_fd = -1;
static volatile sig_atomic_t asked = 0;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_usr1(int sig) {
    (void)sig;
    int64_t t = now_ns();
    int saved = errno;
    ssize_t rc = write(out_fd, &t, sizeof t);
    (void)rc;
    errno = saved;
}

static void on_usr2(int sig) {
    (void)sig;
    _exit(0);
}

static void on_ckpt(int sig) {
    (void)sig;
    asked = 1;
}

static int read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int do_catch(const char *fifo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    out_fd = open(fifo, O_WRONLY | O_CLOEXEC);
    if (out_fd < 0) { perror(fifo); return 1; }
    int64_t zero = 0;
    if (write(out_fd, &zero, sizeof zero) != sizeof zero) return 1;
    for (;;) pause();
}

static int do_send(pid_t pid, int sig, long n, long gap_us, const char *fifo, int again) {
    int fd = open(fifo, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror(fifo); return 1; }
    int64_t t1;
    /* the catcher writes one ready record when it starts: only the first sender reads it */
    if (!again && read_full(fd, &t1, sizeof t1) != 0) { fprintf(stderr, "no ready record\n"); return 1; }
    struct timespec gap = { gap_us / 1000000, (gap_us % 1000000) * 1000 };
    for (long i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        if (kill(pid, sig) != 0) { perror("kill"); return 1; }
        if (read_full(fd, &t1, sizeof t1) != 0) { fprintf(stderr, "catcher went away\n"); return 1; }
        printf("%lld\n", (long long)(t1 - t0));
        nanosleep(&gap, NULL);
    }
    fflush(stdout);
    return 0;
}

static int do_job(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_ckpt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    int fd = open("ready", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
    unsigned long count = 0;
    for (;;) {
        pause();
        if (!asked) continue;
        asked = 0;
        count++;
        char buf[64];
        int len = snprintf(buf, sizeof buf, "%lu\n", count);
        fd = open("ck.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) continue;
        if (write(fd, buf, (size_t)len) != len) { close(fd); continue; }
        close(fd);
        rename("ck.tmp", "ck");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "catch") == 0) return do_catch(argv[2]);
    if (argc >= 7 && strcmp(argv[1], "send") == 0)
        return do_send((pid_t)atol(argv[2]), atoi(argv[3]), atol(argv[4]), atol(argv[5]), argv[6],
                       argc >= 8 && strcmp(argv[7], "again") == 0);
    if (argc >= 2 && strcmp(argv[1], "job") == 0) return do_job();
    fprintf(stderr, "usage: benchprog catch FIFO | send PID SIG N GAP_US FIFO [again] | job\n");
    return 2;
}
