"""Programs with no checkpoint of their own: their whole state is in memory.

Each prints one line a step and writes its result file only at the end, so a run that resumed
from the wrong place (or restarted from scratch) gives a different result file.
"""

PY_MEMORY = r'''
import hashlib, sys, time
n = int(sys.argv[1])
h = hashlib.sha256()
for i in range(n):
    h.update(str(i).encode())
    print(i, h.hexdigest()[:16], flush=True)
    time.sleep(0.05)
with open("result.txt", "w") as f:
    f.write(h.hexdigest() + "\n")
'''

PY_PIPE = r'''
import os, sys, time
n = int(sys.argv[1])
r, w = os.pipe()
pid = os.fork()
if pid == 0:  # the child: squares numbers it reads from the pipe, sums them in memory
    os.close(w)
    total = 0
    with os.fdopen(r) as f:
        for line in f:
            total += int(line) ** 2
    with open("result.txt", "w") as out:
        out.write(f"{total}\n")
    os._exit(0)
os.close(r)
with os.fdopen(w, "w") as f:
    for i in range(n):
        f.write(f"{i}\n")
        f.flush()
        print("sent", i, flush=True)
        time.sleep(0.05)
os.waitpid(pid, 0)
'''

C_MEMORY = r'''
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    unsigned long long h = 1469598103934665603ULL;
    struct timespec ts = {0, 50 * 1000 * 1000};
    for (int i = 0; i < n; i++) {
        h = (h ^ (unsigned long long)i) * 1099511628211ULL;
        printf("%d %016llx\n", i, h);
        fflush(stdout);
        nanosleep(&ts, NULL);
    }
    FILE *f = fopen("result.txt", "w");
    fprintf(f, "%016llx\n", h);
    fclose(f);
    return 0;
}
'''

C_THREADS = r'''
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define T 4
static int n;
static unsigned long long sums[T];
static void *work(void *arg) {
    long k = (long)arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    for (int i = 0; i < n; i++) {
        sums[k] = sums[k] * 31 + (unsigned long long)(i * (k + 1));
        if (k == 0) { printf("%d\n", i); fflush(stdout); }
        nanosleep(&ts, NULL);
    }
    return NULL;
}
int main(int argc, char **argv) {
    n = atoi(argv[1]);
    pthread_t th[T];
    for (long k = 0; k < T; k++) pthread_create(&th[k], NULL, work, (void *)k);
    for (int k = 0; k < T; k++) pthread_join(th[k], NULL);
    FILE *f = fopen("result.txt", "w");
    for (int k = 0; k < T; k++) fprintf(f, "%016llx\n", sums[k]);
    fclose(f);
    printf("done\n");
    return 0;
}
'''
