#include <curl/curl.h>
#include "ccurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* libcurl is opened on first use, not linked: it and the thirty libraries it needs (OpenSSL,
   nghttp2, Kerberos, LDAP, …) cost every herald process ~5 ms to load, and most CLI commands
   (`herald send` to an http:// server among them) never make a transfer with it. */

#define HC_LIBRARY "libcurl.so.4"

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd[], unsigned int, int, int *);
    CURLMcode (*multi_wakeup)(CURLM *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    const char *(*multi_strerror)(CURLMcode);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLSH *(*share_init)(void);
    CURLSHcode (*share_cleanup)(CURLSH *);
    CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} hc;

static pthread_once_t hc_load_once = PTHREAD_ONCE_INIT;
static int hc_loaded = 0;
static char hc_load_error[512] = "";

static void hc_load(void) {
    void *lib = dlopen(HC_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(hc_load_error, sizeof hc_load_error, "cannot load %s (install libcurl4): %s", HC_LIBRARY, why ? why : "unknown error");
        return;
    }
#define HC_SYM(field, name) \
    if (!(*(void **)&hc.field = dlsym(lib, name))) { \
        snprintf(hc_load_error, sizeof hc_load_error, "%s lacks %s (libcurl 7.68 or later is needed)", HC_LIBRARY, name); \
        return; \
    }
    HC_SYM(global_init, "curl_global_init")
    HC_SYM(easy_init, "curl_easy_init")
    HC_SYM(easy_cleanup, "curl_easy_cleanup")
    HC_SYM(easy_reset, "curl_easy_reset")
    HC_SYM(easy_strerror, "curl_easy_strerror")
    HC_SYM(easy_setopt, "curl_easy_setopt")
    HC_SYM(easy_getinfo, "curl_easy_getinfo")
    HC_SYM(multi_init, "curl_multi_init")
    HC_SYM(multi_cleanup, "curl_multi_cleanup")
    HC_SYM(multi_add_handle, "curl_multi_add_handle")
    HC_SYM(multi_remove_handle, "curl_multi_remove_handle")
    HC_SYM(multi_perform, "curl_multi_perform")
    HC_SYM(multi_poll, "curl_multi_poll")
    HC_SYM(multi_wakeup, "curl_multi_wakeup")
    HC_SYM(multi_info_read, "curl_multi_info_read")
    HC_SYM(multi_strerror, "curl_multi_strerror")
    HC_SYM(multi_setopt, "curl_multi_setopt")
    HC_SYM(share_init, "curl_share_init")
    HC_SYM(share_cleanup, "curl_share_cleanup")
    HC_SYM(share_setopt, "curl_share_setopt")
    HC_SYM(slist_append, "curl_slist_append")
    HC_SYM(slist_free_all, "curl_slist_free_all")
#undef HC_SYM
    hc_loaded = 1;
}

const char *hc_load_problem(void) {
    pthread_once(&hc_load_once, hc_load);
    return hc_loaded ? NULL : hc_load_error;
}

static pthread_once_t hc_once = PTHREAD_ONCE_INIT;
static CURLcode hc_global_rc = CURLE_OK;

static void hc_do_global_init(void) {
    hc_global_rc = hc_load_problem() ? CURLE_FAILED_INIT : hc.global_init(CURL_GLOBAL_ALL);
}

CURLcode hc_global_init_once(void) {
    pthread_once(&hc_once, hc_do_global_init);
    return hc_global_rc;
}

/* Everything below runs only after hc_global_init_once succeeded (the transport checks it before
   anything else), so the table is filled. */

CURL *hc_easy_init(void) { return hc.easy_init(); }
void hc_easy_cleanup(CURL *easy) { hc.easy_cleanup(easy); }
void hc_easy_reset(CURL *easy) { hc.easy_reset(easy); }

const char *hc_easy_strerror(CURLcode code) {
    const char *problem = hc_load_problem();
    return problem ? problem : hc.easy_strerror(code);
}

CURLM *hc_multi_init(void) { return hc.multi_init(); }
CURLMcode hc_multi_cleanup(CURLM *multi) { return hc.multi_cleanup(multi); }
CURLMcode hc_multi_add_handle(CURLM *multi, CURL *easy) { return hc.multi_add_handle(multi, easy); }
CURLMcode hc_multi_remove_handle(CURLM *multi, CURL *easy) { return hc.multi_remove_handle(multi, easy); }
CURLMcode hc_multi_perform(CURLM *multi, int *running) { return hc.multi_perform(multi, running); }
CURLMcode hc_multi_poll(CURLM *multi, int timeout_ms, int *ready) { return hc.multi_poll(multi, NULL, 0, timeout_ms, ready); }
CURLMcode hc_multi_wakeup(CURLM *multi) { return hc.multi_wakeup(multi); }
CURLMsg *hc_multi_info_read(CURLM *multi, int *remaining) { return hc.multi_info_read(multi, remaining); }
const char *hc_multi_strerror(CURLMcode code) { return hc.multi_strerror(code); }

struct curl_slist *hc_slist_append(struct curl_slist *list, const char *line) { return hc.slist_append(list, line); }
void hc_slist_free_all(struct curl_slist *list) { hc.slist_free_all(list); }

CURLSH *hc_share_new_ssl_sessions(void) {
    CURLSH *share = hc.share_init();
    if (!share) return NULL;
    if (hc.share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        hc.share_cleanup(share);
        return NULL;
    }
    return share;
}

void hc_share_cleanup(CURLSH *share) { hc.share_cleanup(share); }

CURLcode hc_easy_setopt_long(CURL *easy, CURLoption option, long value) {
    return hc.easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_off_t(CURL *easy, CURLoption option, curl_off_t value) {
    return hc.easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_str(CURL *easy, CURLoption option, const char *value) {
    return hc.easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_ptr(CURL *easy, CURLoption option, void *value) {
    return hc.easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value) {
    return hc.easy_setopt(easy, option, value);
}

CURLcode hc_easy_setopt_write_cb(CURL *easy, hc_data_cb callback) {
    return hc.easy_setopt(easy, CURLOPT_WRITEFUNCTION, callback);
}

CURLcode hc_easy_setopt_header_cb(CURL *easy, hc_data_cb callback) {
    return hc.easy_setopt(easy, CURLOPT_HEADERFUNCTION, callback);
}

CURLcode hc_easy_setopt_read_cb(CURL *easy, hc_data_cb callback) {
    return hc.easy_setopt(easy, CURLOPT_READFUNCTION, callback);
}

CURLcode hc_easy_setopt_seek_cb(CURL *easy, hc_seek_cb callback) {
    return hc.easy_setopt(easy, CURLOPT_SEEKFUNCTION, callback);
}

CURLMcode hc_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return hc.multi_setopt(multi, option, value);
}

CURLcode hc_easy_getinfo_long(CURL *easy, CURLINFO info, long *out) {
    return hc.easy_getinfo(easy, info, out);
}

CURLcode hc_easy_getinfo_double(CURL *easy, CURLINFO info, double *out) {
    return hc.easy_getinfo(easy, info, out);
}

CURLcode hc_easy_getinfo_off_t(CURL *easy, CURLINFO info, curl_off_t *out) {
    return hc.easy_getinfo(easy, info, out);
}

CURLcode hc_easy_getinfo_ptr(CURL *easy, CURLINFO info, void **out) {
    return hc.easy_getinfo(easy, info, out);
}

int hc_msg_is_done(const CURLMsg *msg) {
    return msg && msg->msg == CURLMSG_DONE;
}

CURLcode hc_msg_result(const CURLMsg *msg) {
    return msg->data.result;
}

CURL *hc_msg_easy(const CURLMsg *msg) {
    return msg->easy_handle;
}
