/* tests/hub/fake_hub.h — starting and driving tests/hub/fake_hub.py from a
 * cmocka test: the server runs on a free 127.0.0.1 port for the test
 * program's lifetime (it dies with its parent), and the helpers inject
 * faults and read the log of requests it received. */
#ifndef MLXE_TEST_FAKE_HUB_H
#define MLXE_TEST_FAKE_HUB_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fake_hub {
    pid_t pid;
    int port;
    char endpoint[64];
} fake_hub;

/* Starts the server with extra arguments (e.g. "--lfs-size", "300000"). */
static inline int fake_hub_start(fake_hub *hub, const char *arg1, const char *arg2) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        const char *script = MLXE_SOURCE_DIR "/tests/hub/fake_hub.py";
        if (arg1)
            execl("/usr/bin/python3", "python3", script, "--port", "0", arg1, arg2, (char *)NULL);
        else
            execl("/usr/bin/python3", "python3", script, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[64] = "";
    if (!f || !fgets(line, sizeof line, f) || sscanf(line, "PORT %d", &hub->port) != 1) {
        if (f) fclose(f);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    fclose(f);
    hub->pid = pid;
    snprintf(hub->endpoint, sizeof hub->endpoint, "http://127.0.0.1:%d", hub->port);
    return 0;
}

static inline void fake_hub_stop(fake_hub *hub) {
    if (hub->pid > 0) {
        kill(hub->pid, SIGTERM);
        waitpid(hub->pid, NULL, 0);
        hub->pid = 0;
    }
}

typedef struct fake_hub_body {
    char *data;
    size_t size;
} fake_hub_body;

static inline size_t fake_hub_collect(char *data, size_t size, size_t n, void *user) {
    fake_hub_body *b = user;
    char *p = realloc(b->data, b->size + size * n + 1);
    if (!p) return 0;
    memcpy(p + b->size, data, size * n);
    b->data = p;
    b->size += size * n;
    b->data[b->size] = 0;
    return size * n;
}

/* A raw request to the server; returns the body (malloc'd, NUL-ended). */
static inline char *fake_hub_request(const fake_hub *hub, const char *method, const char *path,
                                     const char *body, size_t *size) {
    char *url = NULL;
    if (asprintf(&url, "%s%s", hub->endpoint, path) < 0) return NULL;
    CURL *c = curl_easy_init();
    fake_hub_body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fake_hub_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    free(url);
    if (size) *size = b.size;
    return b.data;
}

static inline void fake_hub_faults(const fake_hub *hub, const char *json) {
    free(fake_hub_request(hub, "POST", "/_faults", json, NULL));
}

/* Clears faults and the request log. */
static inline void fake_hub_reset(const fake_hub *hub) {
    free(fake_hub_request(hub, "DELETE", "/_faults", NULL, NULL));
    free(fake_hub_request(hub, "DELETE", "/_log", NULL, NULL));
}

/* The requests received since the last reset (a JSON array; cJSON_Delete it). */
static inline cJSON *fake_hub_log(const fake_hub *hub) {
    char *text = fake_hub_request(hub, "GET", "/_log", NULL, NULL);
    cJSON *log = text ? cJSON_Parse(text) : NULL;
    free(text);
    return log;
}

static inline int fake_hub_request_count(const fake_hub *hub) {
    cJSON *log = fake_hub_log(hub);
    int n = cJSON_GetArraySize(log);
    cJSON_Delete(log);
    return n;
}

static inline int fake_hub_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf. */
static inline void fake_hub_remove_tree(const char *path) {
    nftw(path, fake_hub_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
