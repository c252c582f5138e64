/* diag/redact.c — removes secrets from text before it is logged or reported.
 *
 * One left-to-right pass over the text; at each position the rules below are
 * tried in order and the first that matches rewrites a span, otherwise one
 * byte is copied:
 *   1. a registered secret (HF_TOKEN's value, the token file, values added
 *      with mlxe_redact_add_secret), matched literally;
 *   2. token shapes: `hf_` + letters/digits (Hugging Face user access tokens,
 *      huggingface_hub's `hf_` prefix), `api_org_...` (old org tokens), `sk-...`,
 *      `ghp_...`, `github_pat_...`;
 *   3. `Bearer X`, `Basic X`: the scheme stays, X goes;
 *   4. URL user info: `scheme://user:pass@host` becomes `scheme://[REDACTED]@host`;
 *   5. `key=value` / `key: value` / `"key": "value"` where key names a
 *      secret (token, password, api_key, ...; see is_secret_key), as in URL
 *      queries (`?token=...`), environment dumps and JSON.
 * A redacted span becomes "[REDACTED]". The replacement never contains a
 * quote, backslash or whitespace and value spans stop at those, so redacting
 * JSON or Markdown text keeps it well-formed. */
#include "diag/redact.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"

#define REDACTED "[REDACTED]"
#define MAX_SECRETS 32
/* Shorter registered values are not treated as secrets: replacing every
 * occurrence of e.g. "abc" would shred the text for no protection. */
#define MIN_SECRET_LENGTH 6

static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];
static size_t n_secrets;

typedef struct writer {
    char *out;
    size_t capacity;
    size_t length; /* bytes the whole result needs, may exceed capacity */
} writer;

static void put(writer *w, const char *bytes, size_t n) {
    if (w->capacity > 0 && w->length < w->capacity - 1) {
        size_t room = w->capacity - 1 - w->length;
        memcpy(w->out + w->length, bytes, n < room ? n : room);
    }
    w->length += n;
}

static bool is_alnum(char c) { return isalnum((unsigned char)c) != 0; }
static bool is_key_char(char c) { return is_alnum(c) || c == '_' || c == '-' || c == '.'; }

/* Characters that end a value: whitespace, separators, quotes, brackets. */
static bool ends_value(char c) {
    return c == '\0' || isspace((unsigned char)c) || strchr("&#,;\"'`)]}<>\\|", c) != NULL;
}

/* Rule 1: the longest registered secret starting at s (0 if none).
 * Called with secrets_lock held. */
static size_t match_registered(const char *s) {
    size_t best = 0;
    for (size_t i = 0; i < n_secrets; i++) {
        size_t n = strlen(secrets[i]);
        if (n > best && strncmp(s, secrets[i], n) == 0) best = n;
    }
    return best;
}

/* Rule 2: length of a token of a known shape starting at s (0 if none). */
static size_t match_token_shape(const char *text, const char *s) {
    bool after_alnum = s > text && is_alnum(s[-1]);
    if (strncmp(s, "hf_", 3) == 0) {
        /* Access tokens are hf_ + 34 letters and digits. A shorter run counts
         * when it has a capital or a digit (a token cut by truncation) but
         * not when it is a lower-case word such as hf_transformers. */
        size_t n = 0, mixed = 0;
        while (is_alnum(s[3 + n])) {
            if (isupper((unsigned char)s[3 + n]) || isdigit((unsigned char)s[3 + n])) mixed++;
            n++;
        }
        if (n >= 30 || (n >= 8 && mixed > 0)) return 3 + n;
        return 0;
    }
    static const char *const prefixes[] = {"api_org_", "sk-", "ghp_", "github_pat_"};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        size_t plen = strlen(prefixes[p]);
        if (after_alnum || strncmp(s, prefixes[p], plen) != 0) continue;
        size_t n = 0;
        while (is_alnum(s[plen + n]) || s[plen + n] == '_' || s[plen + n] == '-') n++;
        if (n >= 16) return plen + n;
    }
    return 0;
}

/* Length of a value run starting at s (stops at ends_value). */
static size_t value_length(const char *s) {
    size_t n = 0;
    while (!ends_value(s[n])) n++;
    return n;
}

/* Rule 3: "Bearer X" / "Basic X" / "Token X" (any case) at a word start.
 * Returns the length of the scheme word plus spaces (what stays), and sets
 * *value_len to the length of X. */
static size_t match_auth_scheme(const char *text, const char *s, size_t *value_len) {
    static const char *const schemes[] = {"bearer", "basic"};
    if (s > text && is_key_char(s[-1])) return 0;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i]);
        if (strncasecmp(s, schemes[i], n) != 0 || (s[n] != ' ' && s[n] != '\t')) continue;
        size_t spaces = 0;
        while (s[n + spaces] == ' ' || s[n + spaces] == '\t') spaces++;
        size_t v = value_length(s + n + spaces);
        if (v == 0) return 0;
        *value_len = v;
        return n + spaces;
    }
    return 0;
}

/* Is this key (as written, any case, '-' or '.' for '_') the name of a secret? */
static bool is_secret_key(const char *key, size_t n) {
    char lower[64];
    if (n == 0 || n >= sizeof lower) return false;
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)key[i]);
        lower[i] = (c == '-' || c == '.') ? '_' : c;
    }
    lower[n] = '\0';
    static const char *const exact[] = {
        "token", "access_token", "auth_token", "api_token", "hf_token", "hugging_face_hub_token",
        "huggingface_hub_token", "huggingface_token", "refresh_token", "id_token",
        "session_token", "bearer_token", "authorization", "proxy_authorization", "auth", "password", "passwd", "pwd",
        "secret", "client_secret", "api_key", "apikey", "access_key",
        "secret_key", "private_key", "x_api_key", "sig", "signature", "x_amz_signature",
        "x_amz_security_token", "x_amz_credential", "credential", "credentials"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(lower, exact[i]) == 0) return true;
    /* Paths to a secret are not secrets (HF_TOKEN_PATH is useful to see). */
    if (n > 5 && strcmp(lower + n - 5, "_path") == 0) return false;
    static const char *const suffixes[] = {"_secret", "_password", "_passwd", "_api_key",
                                           "_apikey", "_access_key", "_secret_key",
                                           "_private_key", "_credentials"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t sn = strlen(suffixes[i]);
        if (n > sn && strcmp(lower + n - sn, suffixes[i]) == 0) return true;
    }
    /* *_token is a secret (GITHUB_TOKEN, my_token) except the tokenizer's
     * special-token fields, which logs mention often and which are not. */
    if (n > 6 && strcmp(lower + n - 6, "_token") == 0) {
        static const char *const tokenizer_words[] = {
            "bos", "eos", "pad", "unk", "sep", "cls", "mask", "add_bos", "add_eos", "image",
            "video", "audio", "boi", "eoi", "start", "end", "stop", "first", "last", "next",
            "special", "max", "max_new", "num", "n", "per", "decoder_start", "default", "chat"};
        size_t head = n - 6;
        for (size_t i = 0; i < sizeof tokenizer_words / sizeof tokenizer_words[0]; i++)
            if (strlen(tokenizer_words[i]) == head && strncmp(lower, tokenizer_words[i], head) == 0)
                return false;
        return true;
    }
    return false;
}

/* Rule 5: at a key start, `key` [quote] [spaces] (= or :) [spaces] [quote]
 * value. Returns the length to copy as is (key and separators) and sets
 * *value_len; 0 if this is not a secret assignment. */
static size_t match_secret_assignment(const char *text, const char *s, size_t *value_len) {
    if (s > text && is_key_char(s[-1])) return 0;
    size_t key_len = 0;
    while (is_key_char(s[key_len])) key_len++;
    if (!is_secret_key(s, key_len)) return 0;
    size_t i = key_len;
    if (s[i] == '"' || s[i] == '\'') i++;
    while (s[i] == ' ' || s[i] == '\t') i++;
    if (s[i] != '=' && s[i] != ':') return 0;
    i++;
    while (s[i] == ' ' || s[i] == '\t') i++;
    if (s[i] == '"' || s[i] == '\'') i++;
    /* "Authorization: Bearer X": keep the scheme, redact X. */
    size_t scheme_value = 0;
    size_t scheme = match_auth_scheme(text, s + i, &scheme_value);
    if (scheme > 0) {
        *value_len = scheme_value;
        return i + scheme;
    }
    /* Any other scheme of an Authorization header ("token X", "Digest X"):
     * a word then spaces then the credential. */
    if (strncasecmp(s, "authorization", 13) == 0 || strncasecmp(s, "proxy-authorization", 19) == 0 ||
        strncasecmp(s, "proxy_authorization", 19) == 0) {
        size_t word = 0;
        while (isalpha((unsigned char)s[i + word]) || s[i + word] == '-') word++;
        size_t spaces = 0;
        while (s[i + word + spaces] == ' ') spaces++;
        if (word > 0 && spaces > 0 && value_length(s + i + word + spaces) > 0) {
            *value_len = value_length(s + i + word + spaces);
            return i + word + spaces;
        }
    }
    size_t v = value_length(s + i);
    if (v == 0) return 0;
    *value_len = v;
    return i;
}

/* Rule 4: at "://", the length of user info up to and including the last '@'
 * of the authority (0 if there is none). */
static size_t match_url_userinfo(const char *s) {
    if (strncmp(s, "://", 3) != 0) return 0;
    const char *authority = s + 3;
    size_t last_at = 0;
    bool has_at = false;
    for (size_t i = 0; !ends_value(authority[i]) && authority[i] != '/' && authority[i] != '?'; i++)
        if (authority[i] == '@') {
            last_at = i;
            has_at = true;
        }
    return has_at ? last_at + 1 : 0;
}

/* Pass 1: every registered secret becomes REDACTED. Done before the rules
 * so that a rule's span cannot cut a secret in two and leave half of it.
 * Called with secrets_lock held. */
static size_t replace_registered(const char *text, writer *w) {
    for (const char *s = text; *s;) {
        size_t n = match_registered(s);
        if (n > 0) {
            put(w, REDACTED, strlen(REDACTED));
            s += n;
        } else {
            put(w, s, 1);
            s++;
        }
    }
    return w->length;
}

/* Pass 2: the shape rules (and, when pass 1 could not run for want of
 * memory, registered secrets too). Called with secrets_lock held. */
static void apply_rules(const char *text, writer *w, bool check_registered) {
    const char *s = text;
    while (*s) {
        size_t n = check_registered ? match_registered(s) : 0;
        if (n == 0) n = match_token_shape(text, s);
        if (n > 0) {
            put(w, REDACTED, strlen(REDACTED));
            s += n;
            continue;
        }
        size_t value_len = 0;
        size_t keep = match_auth_scheme(text, s, &value_len);
        if (keep == 0) keep = match_secret_assignment(text, s, &value_len);
        if (keep > 0) {
            put(w, s, keep);
            put(w, REDACTED, strlen(REDACTED));
            s += keep + value_len;
            continue;
        }
        size_t userinfo = match_url_userinfo(s);
        if (userinfo > 0) {
            put(w, "://" REDACTED "@", strlen("://" REDACTED "@"));
            s += 3 + userinfo;
            continue;
        }
        put(w, s, 1);
        s++;
    }
}

size_t mlxe_redact_secrets(const char *text, char *out, size_t out_size) {
    writer w = {out, out_size, 0};
    if (!text) text = "";
    pthread_mutex_lock(&secrets_lock);
    char *first_pass = NULL;
    if (n_secrets > 0) {
        writer measure = {NULL, 0, 0};
        size_t needed = replace_registered(text, &measure);
        first_pass = malloc(needed + 1);
        if (first_pass) {
            writer fill = {first_pass, needed + 1, 0};
            replace_registered(text, &fill);
            first_pass[needed] = '\0';
        }
    }
    apply_rules(first_pass ? first_pass : text, &w, n_secrets > 0 && !first_pass);
    free(first_pass);
    pthread_mutex_unlock(&secrets_lock);
    if (out_size > 0) out[w.length < out_size - 1 ? w.length : out_size - 1] = '\0';
    return w.length;
}

char *mlxe_redact_dup(const char *text) {
    size_t needed = mlxe_redact_secrets(text, NULL, 0);
    char *copy = malloc(needed + 1);
    if (!copy) return NULL;
    mlxe_redact_secrets(text, copy, needed + 1);
    return copy;
}

void mlxe_redact_in_place(char *text, size_t capacity) {
    if (!text || capacity == 0) return;
    size_t needed = mlxe_redact_secrets(text, NULL, 0);
    char *copy = malloc(needed + 1);
    if (copy) {
        mlxe_redact_secrets(text, copy, needed + 1);
        size_t n = needed < capacity - 1 ? needed : capacity - 1;
        memcpy(text, copy, n);
        text[n] = '\0';
        free(copy);
        return;
    }
    /* Out of memory: blank the message rather than risk showing a secret. */
    snprintf(text, capacity, "%s", "[message dropped: out of memory while redacting]");
}

bool mlxe_redact_is_secret_name(const char *name) {
    return name && is_secret_key(name, strlen(name));
}

mlxe_status mlxe_redact_add_secret(const char *secret, mlxe_error *err) {
    if (!secret)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_redact_add_secret: secret is NULL");
    /* Surrounding whitespace is not part of a token (huggingface_hub strips it). */
    while (isspace((unsigned char)*secret)) secret++;
    size_t n = strlen(secret);
    while (n > 0 && isspace((unsigned char)secret[n - 1])) n--;
    if (n < MIN_SECRET_LENGTH) return MLXE_OK;
    mlxe_status status = MLXE_OK;
    pthread_mutex_lock(&secrets_lock);
    bool known = false;
    for (size_t i = 0; i < n_secrets; i++)
        if (strlen(secrets[i]) == n && strncmp(secrets[i], secret, n) == 0) known = true;
    if (!known) {
        if (n_secrets == MAX_SECRETS) {
            /* Forget the oldest: recent secrets are the ones in use. */
            free(secrets[0]);
            memmove(secrets, secrets + 1, (MAX_SECRETS - 1) * sizeof secrets[0]);
            n_secrets--;
        }
        char *copy = strndup(secret, n);
        if (copy)
            secrets[n_secrets++] = copy;
        else
            status = MLXE_ERR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&secrets_lock);
    if (status != MLXE_OK)
        return mlxe_error_set(err, status, "mlxe_redact_add_secret: out of memory");
    return MLXE_OK;
}

void mlxe_redact_forget_secrets(void) {
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < n_secrets; i++) free(secrets[i]);
    n_secrets = 0;
    pthread_mutex_unlock(&secrets_lock);
}
