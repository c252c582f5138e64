/* hub/hub_fetch.c — the download engine: several files at once on one curl
 * multi handle, each written to blobs/{etag}.incomplete and resumed from
 * its size with Range (across runs too, unlike huggingface_hub ≥ 1.18),
 * hashed in the write callback as it arrives (bytes kept from an earlier run
 * are hashed from disk first), verified against its etag (sha256 or git blob
 * sha1) before it is renamed into blobs/ and linked into snapshots/, with
 * retries and backoff (Retry-After / RateLimit honoured), a stall detector
 * (no byte for stall_timeout_s: reconnect and resume), flock() per blob so
 * two processes never write the same file, cancellation and one progress
 * callback. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/log_internal.h"
#include "hub/hub_internal.h"

typedef enum job_state { JOB_PENDING, JOB_ACTIVE, JOB_DONE } job_state;
struct fetch_run;

typedef struct fetch_job {
    struct fetch_run *run;
    const hub_fetch_job *spec;
    job_state state;
    double not_before;        /* earliest start time (backoff, busy lock) */
    int lock_fd;
    int fd;                   /* the .incomplete file */
    char *incomplete_path;
    char *blob_path;
    char *url;
    uint64_t offset;          /* bytes hashed: on disk, or on disk + `pending` during a transfer */
    unsigned char *pending;   /* received bytes not yet written (PENDING_CAPACITY) */
    size_t pending_size;
    int write_errno;          /* errno of the failed write, for the message */
    uint64_t offset_at_start; /* at the start of the current attempt */
    uint64_t requested_from;  /* the Range start asked for */
    int attempts_without_progress;
    bool resumed_from_disk;   /* began with bytes from an earlier run (checked only at the end) */
    hub_hasher *hasher;
    CURL *curl;
    struct curl_slist *headers;
    hub_response response;    /* headers of the latest answer */
    int64_t content_range_start;
    bool body_started;
    bool overflow;
    bool write_failed;
    char curl_error[CURL_ERROR_SIZE];
} fetch_job;

typedef struct fetch_run {
    mlxe_hub *hub;
    const char *repo_id;
    const char *commit;
    char *repo_folder;
    const mlxe_hub_download_options *options;
    fetch_job *jobs;
    size_t n_jobs;
    size_t n_selected;
    size_t n_done_files;
    uint64_t total_bytes;
    uint64_t done_already;
    uint64_t received;        /* bytes received this run, for the speed */
    double speed_time;
    uint64_t speed_received;
    double speed;
    double last_report;
    const struct fetch_job *last_active; /* the file that received bytes last, for progress */
    CURLM *multi;
} fetch_run;

/* curl hands the body over in pieces of at most CURL_MAX_WRITE_SIZE (16 KiB)
 * whatever CURLOPT_BUFFERSIZE says; one write() per piece was the largest
 * syscall cost of a download (issue 6), so pieces are gathered first. 256 KiB
 * stays in L2 between the hash and the write; 1 MiB measured slower than no
 * gathering at all. */
#define PENDING_CAPACITY ((size_t)256 << 10)

/* Writes the gathered bytes to the .incomplete file; false (write_errno set) on failure. */
static bool job_flush(fetch_job *job) {
    const unsigned char *p = job->pending;
    size_t left = job->pending_size;
    while (left) {
        ssize_t w = write(job->fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            job->write_errno = w < 0 ? errno : ENOSPC;
            return false;
        }
        p += w;
        left -= (size_t)w;
    }
    job->pending_size = 0;
    return true;
}

static bool etag_is_hex(const char *etag, size_t n) {
    if (strlen(etag) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", etag[i])) return false;
    return true;
}

static void report(fetch_run *run, const fetch_job *job, bool force, bool finished) {
    double now = hub_now();
    uint64_t received = run->received;
    for (size_t i = 0; i < run->n_jobs; i++)
        if (run->jobs[i].state == JOB_ACTIVE) received += run->jobs[i].offset - run->jobs[i].offset_at_start;
    if (now - run->speed_time >= 0.5) {
        double rate = (double)(received - run->speed_received) / (now - run->speed_time);
        run->speed = run->speed > 0 ? 0.5 * run->speed + 0.5 * rate : rate;
        run->speed_time = now;
        run->speed_received = received;
    }
    if (!run->options || !run->options->progress) return;
    if (!force && now - run->last_report < 0.1) return;
    run->last_report = now;
    uint64_t done = run->done_already;
    for (size_t i = 0; i < run->n_jobs; i++) done += run->jobs[i].offset;
    mlxe_hub_progress p = {0};
    p.total_bytes = run->total_bytes;
    p.done_bytes = done > run->total_bytes ? run->total_bytes : done;
    p.bytes_per_second = run->speed;
    p.eta_seconds = run->speed > 0 ? (double)(p.total_bytes - p.done_bytes) / run->speed : -1;
    if (finished) p.eta_seconds = 0;
    p.n_files = run->n_selected;
    p.n_files_done = run->n_selected - run->n_jobs + run->n_done_files;
    if (job) {
        p.file_path = job->spec->path;
        p.file_size = job->spec->size;
        p.file_done = job->offset;
    }
    p.finished = finished;
    run->options->progress(run->options->progress_user, &p);
}

static void job_close(fetch_run *run, fetch_job *job) {
    if (job->curl) {
        curl_multi_remove_handle(run->multi, job->curl);
        curl_easy_cleanup(job->curl);
        job->curl = NULL;
    }
    curl_slist_free_all(job->headers);
    job->headers = NULL;
    /* Bytes received but not written are hashed yet not on disk: written
     * now so the next pull resumes after them (it re-hashes the file). */
    if (job->fd >= 0 && job->pending_size > 0 && !job_flush(job))
        MLXE_WARN(MLXE_LOG_CAT_HUB, "cannot write %s: %s; the next pull resumes before the lost bytes",
                  job->incomplete_path, strerror(job->write_errno));
    free(job->pending);
    job->pending = NULL;
    job->pending_size = 0;
    if (job->fd >= 0) close(job->fd);
    job->fd = -1;
    hub_unlock_blob(job->lock_fd);
    job->lock_fd = -1;
    hub_hasher_free(job->hasher);
    job->hasher = NULL;
    hub_response_clear(&job->response);
}

static mlxe_status job_finish_linked(fetch_run *run, fetch_job *job, mlxe_error *err) {
    mlxe_status s = hub_link_snapshot(run->repo_folder, run->commit, job->spec->path,
                                      job->spec->etag, run->hub->disable_symlinks, err);
    job_close(run, job);
    if (s) return s;
    job->state = JOB_DONE;
    job->offset = job->spec->size;
    run->n_done_files++;
    report(run, job, true, false);
    return MLXE_OK;
}

static size_t on_job_header(char *data, size_t size, size_t n, void *user) {
    fetch_job *job = user;
    size_t len = size * n;
    hub_response_header_line(&job->response, data, len);
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) job->content_range_start = -1;
    if (len > 14 && strncasecmp(data, "Content-Range:", 14) == 0) {
        const char *p = data + 14;
        while (*p == ' ') p++;
        if (strncmp(p, "bytes ", 6) == 0) job->content_range_start = strtoll(p + 6, NULL, 10);
    }
    return len;
}

/* Restarts the file from byte 0 (a 200 to a Range request). */
static bool job_restart_from_zero(fetch_job *job) {
    job->pending_size = 0;
    if (ftruncate(job->fd, 0) != 0 || lseek(job->fd, 0, SEEK_SET) != 0) return false;
    job->offset = 0;
    job->offset_at_start = 0;
    hub_hasher_reset(job->hasher);
    return true;
}

static size_t on_job_body(char *data, size_t size, size_t n, void *user) {
    fetch_job *job = user;
    size_t len = size * n;
    long status = job->response.status;
    if (status != 200 && status != 206) return len; /* an error page: read and drop */
    if (!job->body_started) {
        job->body_started = true;
        if (job->requested_from > 0 && status == 200) {
            MLXE_INFO(MLXE_LOG_CAT_HUB, "%s: the server ignored Range; restarting from 0",
                      job->spec->path);
            if (!job_restart_from_zero(job)) {
                job->write_failed = true;
                return 0;
            }
        } else if (status == 206 && job->content_range_start != (int64_t)job->offset) {
            job->overflow = true; /* an answer for other bytes than asked */
            return 0;
        }
    }
    if (job->offset + len > job->spec->size) {
        job->overflow = true;
        return 0;
    }
    /* Hashed here, from the bytes curl hands us, rather than read back from
     * the file: on a 2-core machine a second hashing thread that maps the
     * file competes with the server and curl and costs page faults and
     * wake-ups (issue 6: 62% of curl's throughput with it). */
    hub_hasher_update(job->hasher, data, len);
    const char *p = data;
    size_t left = len;
    while (left) {
        if (job->pending_size == PENDING_CAPACITY && !job_flush(job)) {
            job->write_failed = true;
            return 0;
        }
        size_t room = PENDING_CAPACITY - job->pending_size;
        size_t piece = left < room ? left : room;
        memcpy(job->pending + job->pending_size, p, piece);
        job->pending_size += piece;
        p += piece;
        left -= piece;
    }
    job->offset += len;
    job->run->last_active = job;
    return len;
}

static mlxe_status job_start_transfer(fetch_run *run, fetch_job *job, mlxe_error *err) {
    job->curl = curl_easy_init();
    if (!job->curl) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "curl_easy_init failed");
    hub_response_clear(&job->response);
    job->content_range_start = -1;
    job->body_started = false;
    job->overflow = false;
    job->write_failed = false;
    job->curl_error[0] = 0;
    job->offset_at_start = job->offset;
    job->requested_from = job->offset;
    hub_curl_setup(run->hub, job->curl, &job->headers);
    CURL *c = job->curl;
    curl_easy_setopt(c, CURLOPT_URL, job->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, job->headers);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, job->curl_error);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_job_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, job);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_job_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, job);
    curl_easy_setopt(c, CURLOPT_PRIVATE, job);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    /* The stall detector: fewer than 1 byte/s for stall_timeout_s seconds. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)ceil(run->hub->stall_timeout_s));
    char range[48];
    if (job->offset > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)job->offset);
        curl_easy_setopt(c, CURLOPT_RANGE, range); /* copied by curl */
    }
    if (curl_multi_add_handle(run->multi, c) != CURLM_OK) {
        curl_easy_cleanup(c);
        job->curl = NULL;
        return mlxe_error_set(err, MLXE_ERR_INTERNAL, "curl_multi_add_handle failed");
    }
    job->state = JOB_ACTIVE;
    MLXE_DEBUG(MLXE_LOG_CAT_HUB, "GET %s from byte %llu", job->url, (unsigned long long)job->offset);
    return MLXE_OK;
}

/* Checks size and hash; renames into blobs/ and links, or deletes a bad file. */
static mlxe_status job_verify_and_store(fetch_run *run, fetch_job *job, mlxe_error *err) {
    const hub_fetch_job *spec = job->spec;
    char actual[65] = "";
    hub_hasher_final(job->hasher, actual);
    bool checkable = etag_is_hex(spec->etag, 64) || etag_is_hex(spec->etag, 40);
    if (checkable && strcmp(actual, spec->etag) != 0 && job->resumed_from_disk) {
        /* The bytes kept from an earlier run may be what was bad: one fresh try. */
        MLXE_WARN(MLXE_LOG_CAT_HUB, "%s: the resumed file does not match its hash; downloading it again "
                  "from the start", spec->path);
        job->resumed_from_disk = false;
        if (!job_restart_from_zero(job))
            return mlxe_error_set(err, MLXE_ERR_IO, "cannot truncate %s", job->incomplete_path);
        job->state = JOB_PENDING;
        job->not_before = 0;
        return MLXE_OK;
    }
    if (checkable && strcmp(actual, spec->etag) != 0) {
        unlink(job->incomplete_path);
        job->offset = 0;
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "'%s' of model '%s' arrived corrupted: its %s is %s but the Hub "
                              "announced %s; the bad download was deleted — run the pull again "
                              "(if it repeats, a proxy or the mirror at %s is altering files)",
                              spec->path, run->repo_id, spec->lfs ? "sha256" : "git blob sha1",
                              actual, spec->etag, run->hub->endpoint);
    }
    if (!checkable)
        MLXE_WARN(MLXE_LOG_CAT_HUB, "%s: etag '%s' is not a hash; checked the size only", spec->path,
                  spec->etag);
    /* No fsync, as huggingface_hub: the bytes were verified in memory on
     * their way to the page cache, and an fsync per file halves throughput. */
    if (rename(job->incomplete_path, job->blob_path) != 0)
        return mlxe_error_set(err, MLXE_ERR_IO, "cannot move %s to %s: %s", job->incomplete_path,
                              job->blob_path, strerror(errno));
    MLXE_DEBUG(MLXE_LOG_CAT_HUB, "%s: verified (%s)", spec->path, actual);
    return job_finish_linked(run, job, err);
}

/* Starts a pending job: links an existing blob, takes the lock, opens the
 * partial file and hashes what it already holds, then starts the transfer. */
static mlxe_status job_begin(fetch_run *run, fetch_job *job, mlxe_error *err) {
    const hub_fetch_job *spec = job->spec;
    if (mlxe_file_exists(job->blob_path)) return job_finish_linked(run, job, err);
    if (job->lock_fd < 0) {
        int fd = hub_lock_blob(run->hub->cache_dir, run->repo_id, spec->etag, true, err);
        if (fd == -2) { /* another process is downloading this blob: wait for it */
            job->not_before = hub_now() + 0.2;
            return MLXE_OK;
        }
        if (fd < 0) return err ? err->status : MLXE_ERR_IO;
        job->lock_fd = fd;
        if (mlxe_file_exists(job->blob_path)) return job_finish_linked(run, job, err);
    }
    if (job->fd < 0) {
        job->fd = open(job->incomplete_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (job->fd < 0)
            return mlxe_error_set(err, MLXE_ERR_IO, "cannot write %s: %s", job->incomplete_path,
                                  strerror(errno));
        struct stat st;
        uint64_t have = fstat(job->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        job->hasher = hub_hasher_create(spec->lfs, spec->size);
        job->pending = malloc(PENDING_CAPACITY);
        if (!job->hasher || !job->pending) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
        uint64_t on_disk = have;
        if (have > spec->size) have = 0;
        if (have == 0 && on_disk > 0) {
            /* Only a file with unusable bytes is truncated: ext4 flushes a file
             * truncated to zero on close (auto_da_alloc), which costs seconds. */
            if (ftruncate(job->fd, 0) != 0)
                return mlxe_error_set(err, MLXE_ERR_IO, "cannot truncate %s", job->incomplete_path);
        } else if (have > 0) {
            MLXE_INFO(MLXE_LOG_CAT_HUB, "%s: resuming at byte %llu of %llu", spec->path,
                      (unsigned long long)have, (unsigned long long)spec->size);
            job->resumed_from_disk = true;
        }
        if (lseek(job->fd, (off_t)have, SEEK_SET) < 0)
            return mlxe_error_set(err, MLXE_ERR_IO, "cannot seek in %s", job->incomplete_path);
        /* The bytes already there are hashed first, so the hash of the
         * arriving bytes continues where they end. */
        if (have > 0 && !hub_hasher_update_file(job->hasher, job->incomplete_path, have))
            return mlxe_error_set(err, MLXE_ERR_IO, "cannot read back %s to resume it: %s",
                                  job->incomplete_path, strerror(errno));
        job->offset = have;
    }
    if (job->offset == spec->size) return job_verify_and_store(run, job, err);
    return job_start_transfer(run, job, err);
}

/* A transfer ended: store it, schedule a retry, or fail. */
static mlxe_status job_ended(fetch_run *run, fetch_job *job, CURLcode code, mlxe_error *err) {
    const hub_fetch_job *spec = job->spec;
    long status = job->response.status;
    curl_multi_remove_handle(run->multi, job->curl);
    curl_easy_cleanup(job->curl);
    job->curl = NULL;
    curl_slist_free_all(job->headers);
    job->headers = NULL;
    job->state = JOB_PENDING;
    if (!job->write_failed && !job_flush(job)) job->write_failed = true;
    if (job->write_failed)
        return mlxe_error_set(err, MLXE_ERR_IO, "cannot write %s: %s (disk full?)",
                              job->incomplete_path, strerror(job->write_errno));
    if (code == CURLE_OK && (status == 200 || status == 206) && job->offset == spec->size)
        return job_verify_and_store(run, job, err);
    if (job->overflow) {
        /* More bytes than the file has, or a range we did not ask for: start over. */
        if (!job_restart_from_zero(job))
            return mlxe_error_set(err, MLXE_ERR_IO, "cannot truncate %s", job->incomplete_path);
    }
    double retry_after = -1;
    if (code == CURLE_OK && status == 416) {
        if (!job_restart_from_zero(job))
            return mlxe_error_set(err, MLXE_ERR_IO, "cannot truncate %s", job->incomplete_path);
    } else if (code == CURLE_OK && status >= 400 && !hub_status_retryable(status)) {
        hub_request_context context = {run->repo_id, run->commit, spec->path};
        return hub_http_error(run->hub, &job->response, job->url, &context, err);
    } else if (code == CURLE_OK && hub_status_retryable(status)) {
        retry_after = job->response.retry_after_s;
    }
    bool progressed = job->offset > job->offset_at_start;
    job->attempts_without_progress = progressed ? 0 : job->attempts_without_progress + 1;
    if (job->attempts_without_progress >= run->hub->max_retries) {
        if (code == CURLE_OK && status >= 400) {
            hub_request_context context = {run->repo_id, run->commit, spec->path};
            return hub_http_error(run->hub, &job->response, job->url, &context, err);
        }
        return mlxe_error_set(err, MLXE_ERR_NETWORK,
                              "downloading '%s' of model '%s' failed %d times without progress "
                              "(%s); %llu of %llu bytes are kept in %s and the next pull resumes there",
                              spec->path, run->repo_id, run->hub->max_retries,
                              code != CURLE_OK ? (job->curl_error[0] ? job->curl_error : curl_easy_strerror(code))
                                               : "short answer",
                              (unsigned long long)job->offset, (unsigned long long)spec->size,
                              job->incomplete_path);
    }
    double delay = progressed && retry_after < 0
                       ? 0
                       : hub_retry_delay(run->hub, job->attempts_without_progress - (progressed ? 0 : 1),
                                         retry_after);
    MLXE_INFO(MLXE_LOG_CAT_HUB, "%s: %s at byte %llu; retrying in %.1f s", spec->path,
              code != CURLE_OK ? curl_easy_strerror(code) : "bad answer",
              (unsigned long long)job->offset, delay);
    job->not_before = hub_now() + delay;
    return MLXE_OK;
}

mlxe_status hub_fetch_files(mlxe_hub *hub, const char *repo_id, const char *commit,
                            hub_fetch_job *specs, size_t n_jobs, size_t n_selected,
                            uint64_t total_bytes, uint64_t done_already,
                            const mlxe_hub_download_options *options, mlxe_error *err) {
    fetch_run run = {.hub = hub, .repo_id = repo_id, .commit = commit, .options = options,
                     .n_jobs = n_jobs, .n_selected = n_selected, .total_bytes = total_bytes,
                     .done_already = done_already};
    run.speed_time = hub_now();
    run.repo_folder = hub_repo_folder(hub->cache_dir, repo_id);
    run.jobs = calloc(n_jobs + 1, sizeof *run.jobs);
    run.multi = curl_multi_init();
    mlxe_status s = MLXE_OK;
    if (!run.repo_folder || !run.jobs || !run.multi)
        s = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    char *blobs = s == MLXE_OK ? hub_printf("%s/blobs", run.repo_folder) : NULL;
    if (s == MLXE_OK && (!blobs || hub_mkdirs(blobs, err) != MLXE_OK))
        s = blobs ? err->status : MLXE_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; s == MLXE_OK && i < n_jobs; i++) {
        fetch_job *job = &run.jobs[i];
        job->spec = &specs[i];
        job->run = &run;
        job->fd = -1;
        job->lock_fd = -1;
        job->response.size = -1;
        char *rev = hub_url_quote(commit, "");
        char *file = hub_url_quote(specs[i].path, "/");
        job->url = rev && file ? hub_printf("%s/%s/resolve/%s/%s", hub->endpoint, repo_id, rev, file) : NULL;
        free(rev);
        free(file);
        job->blob_path = hub_printf("%s/%s", blobs, specs[i].etag);
        job->incomplete_path = hub_printf("%s/%s.incomplete", blobs, specs[i].etag);
        if (!job->url || !job->blob_path || !job->incomplete_path)
            s = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    free(blobs);
    if (s == MLXE_OK)
        curl_multi_setopt(run.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)hub->max_parallel);
    while (s == MLXE_OK && run.n_done_files < n_jobs) {
        if (options && mlxe_cancel_is_requested(options->cancel)) {
            s = mlxe_error_set(err, MLXE_ERR_CANCELLED,
                               "download of '%s' cancelled; partial files are kept and the next "
                               "pull resumes them", repo_id);
            break;
        }
        int active = 0;
        for (size_t i = 0; i < n_jobs; i++) active += run.jobs[i].state == JOB_ACTIVE;
        double now = hub_now();
        for (size_t i = 0; s == MLXE_OK && i < n_jobs && active < hub->max_parallel; i++) {
            fetch_job *job = &run.jobs[i];
            if (job->state != JOB_PENDING || job->not_before > now) continue;
            s = job_begin(&run, job, err);
            active += job->state == JOB_ACTIVE;
        }
        if (s) break;
        int running = 0;
        curl_multi_perform(run.multi, &running);
        CURLMsg *msg;
        int left = 0;
        while (s == MLXE_OK && (msg = curl_multi_info_read(run.multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            fetch_job *job = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&job);
            CURLcode code = msg->data.result;
            run.received += job->offset - job->offset_at_start;
            s = job_ended(&run, job, code, err);
        }
        if (s) break;
        report(&run, run.last_active, false, false);
        if (run.n_done_files < n_jobs) curl_multi_poll(run.multi, NULL, 0, 50, NULL);
    }
    if (s == MLXE_OK) report(&run, NULL, true, true);
    for (size_t i = 0; run.jobs && i < n_jobs; i++) {
        job_close(&run, &run.jobs[i]);
        free(run.jobs[i].url);
        free(run.jobs[i].blob_path);
        free(run.jobs[i].incomplete_path);
    }
    free(run.jobs);
    if (run.multi) curl_multi_cleanup(run.multi);
    free(run.repo_folder);
    return s;
}
