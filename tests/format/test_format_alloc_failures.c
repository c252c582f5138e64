/* Allocation-failure tests of the format loaders, in the manner of SQLite's
 * malloc tests: each loader runs again and again with its 1st, 2nd, 3rd...
 * allocation failing, until a run completes without reaching the failure.
 * Every failing run must return an error (never crash or succeed with
 * missing data) and, under LeakSanitizer, free everything it allocated. */
#include "test_util.h"

#include <stdbool.h>
#include <sys/stat.h>

#include "format/model_config.h"
#include "format/safetensors.h"
#include "format/safetensors_write.h"
#include "format_test_helpers.h"
#include "mlxengine/mlxengine.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *pointer, size_t size);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *pointer, size_t size);
char *__wrap_strdup(const char *s);

static long countdown; /* 0: no failure armed; n: the n-th allocation from now fails */
static bool failure_happened;

static bool should_fail(void) {
    if (countdown > 0 && --countdown == 0) {
        failure_happened = true;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t size) { return should_fail() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t count, size_t size) { return should_fail() ? NULL : __real_calloc(count, size); }
void *__wrap_realloc(void *pointer, size_t size) { return should_fail() ? NULL : __real_realloc(pointer, size); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }

static void *json_malloc(size_t size) { return __wrap_malloc(size); }

static char temp_dir[256];
static char path_buffer[512];

/* temp_dir/name without allocating (the scenarios run with failures armed). */
static const char *in_temp(const char *name) {
    snprintf(path_buffer, sizeof path_buffer, "%s/%s", temp_dir, name);
    return path_buffer;
}

typedef mlxe_status (*scenario_fn)(mlxe_error *err);

/* Runs scenario with allocation k failing, for k = 1, 2, ... until a run
 * does not reach its k-th allocation, which must then end with expected;
 * returns how many failing runs there were. (An allocation failing inside
 * cJSON shows up as a JSON error: cJSON does not tell the two apart.) */
static int run_with_failures(const char *label, scenario_fn scenario, mlxe_status expected) {
    mlxe_error err;
    for (long k = 1; k < 100000; k++) {
        countdown = k;
        failure_happened = false;
        mlxe_status status = scenario(&err);
        countdown = 0;
        if (!failure_happened) {
            if (status != expected) fail_msg("%s: ended with %s without an injected failure: %s", label,
                                             mlxe_status_name(status), err.message);
            return (int)(k - 1);
        }
        if (status == MLXE_OK) fail_msg("%s: allocation %ld failed but the call succeeded", label, k);
    }
    fail_msg("%s: never completed", label);
    return 0;
}

static mlxe_status open_file(mlxe_error *err) {
    mlxe_safetensors_file *file = NULL;
    mlxe_status status = mlxe_safetensors_open(in_temp("single/model.safetensors"), &file, err);
    if (status == MLXE_OK && !mlxe_safetensors_find(file, "model.norm.weight")) status = MLXE_ERR_INTERNAL;
    mlxe_safetensors_close(file);
    return status;
}

static mlxe_status open_sharded(mlxe_error *err) {
    mlxe_weight_set *set = NULL;
    mlxe_status status = mlxe_weight_set_open(in_temp("sharded"), &set, err);
    if (status == MLXE_OK && mlxe_weight_set_count(set) != 4) status = MLXE_ERR_INTERNAL;
    mlxe_weight_set_close(set);
    return status;
}

static mlxe_status open_globbed(mlxe_error *err) {
    mlxe_weight_set *set = NULL;
    mlxe_status status = mlxe_weight_set_open(in_temp("globbed"), &set, err);
    if (status == MLXE_OK && mlxe_weight_set_count(set) != 4) status = MLXE_ERR_INTERNAL;
    mlxe_weight_set_close(set);
    return status;
}

static mlxe_status load_configs(mlxe_error *err) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", in_temp("single"));
    mlxe_model_config config;
    mlxe_generation_config gen;
    mlxe_status status = mlxe_model_config_load(dir, &config, &gen, err);
    if (status == MLXE_OK && config.n_eos_token_ids != 2) status = MLXE_ERR_INTERNAL;
    mlxe_tokenizer_config tokenizer;
    if (status == MLXE_OK) status = mlxe_tokenizer_config_load(dir, &tokenizer, err);
    if (status == MLXE_OK) {
        if (tokenizer.n_chat_templates != 3 || !tokenizer.bos_token) status = MLXE_ERR_INTERNAL;
        mlxe_tokenizer_config_free(&tokenizer);
    }
    return status;
}

static mlxe_status write_file(mlxe_error *err) {
    static const float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    mlxe_safetensors_write_tensor tensors[] = {
        {"b", MLXE_DTYPE_F32, 1, {4}, values}, {"a", MLXE_DTYPE_F32, 2, {2, 2}, values + 4}};
    mlxe_safetensors_metadata_entry meta = {"format", "pt"};
    mlxe_status status = mlxe_safetensors_write(in_temp("written.safetensors"), tensors, 2, &meta, 1, err);
    unsigned char *bytes = NULL;
    size_t size = 0;
    if (status == MLXE_OK) status = mlxe_safetensors_serialize(tensors, 2, &meta, 1, &bytes, &size, err);
    free(bytes);
    return status;
}

/* A broken file: the error path itself must survive allocation failures. */
static mlxe_status open_broken(mlxe_error *err) {
    mlxe_safetensors_file *file = NULL;
    mlxe_status status = mlxe_safetensors_open(in_temp("broken.safetensors"), &file, err);
    mlxe_safetensors_close(file);
    return status;
}

static void make_shard(const char *dir, const char *name, const char *const *names, size_t n) {
    static const float values[16] = {0};
    mlxe_safetensors_write_tensor tensors[4];
    for (size_t i = 0; i < n; i++) tensors[i] = (mlxe_safetensors_write_tensor){names[i], MLXE_DTYPE_F32, 1, {4}, values};
    mlxe_safetensors_metadata_entry meta = {"format", "pt"};
    char *folder = join_path(temp_dir, dir);
    mkdir(folder, 0755);
    char *path = join_path(folder, name);
    mlxe_error err;
    if (mlxe_safetensors_write(path, tensors, n, &meta, 1, &err) != MLXE_OK) fail_msg("%s", err.message);
    free(path);
    free(folder);
}

static void write_text(const char *name, const char *text) {
    char *path = join_path(temp_dir, name);
    test_write_file(path, text, strlen(text));
    free(path);
}

static void test_loaders_survive_allocation_failures(void **state) {
    (void)state;
    test_make_temp_dir(temp_dir, sizeof temp_dir);
    static const char *const all[] = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", "x"};
    make_shard("single", "model.safetensors", all, 4);
    make_shard("sharded", "model-00001-of-00002.safetensors", all, 2);
    make_shard("sharded", "model-00002-of-00002.safetensors", all + 2, 2);
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\","
               "\"model.norm.weight\":\"model-00001-of-00002.safetensors\","
               "\"lm_head.weight\":\"model-00002-of-00002.safetensors\",\"x\":\"model-00002-of-00002.safetensors\"}}");
    make_shard("globbed", "a.safetensors", all, 1);
    make_shard("globbed", "b.safetensors", all + 1, 3);
    write_text("single/config.json",
               "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_attention_heads\":4,\"eos_token_id\":[2,3],"
               "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,"
               "\"high_freq_factor\":4,\"original_max_position_embeddings\":256},\"architectures\":[\"LlamaForCausalLM\"]}");
    write_text("single/generation_config.json", "{\"eos_token_id\":[7,8],\"temperature\":0.5}");
    write_text("single/tokenizer_config.json",
               "{\"bos_token\":{\"content\":\"<s>\"},\"eos_token\":\"</s>\",\"unk_token\":\"<unk>\",\"pad_token\":\"<pad>\","
               "\"tokenizer_class\":\"LlamaTokenizer\",\"chat_template\":[{\"name\":\"default\",\"template\":\"a\"},"
               "{\"name\":\"tool_use\",\"template\":\"b\"}]}");
    write_text("single/chat_template.jinja", "{{ x }}");
    char *extra = join_path(temp_dir, "single/additional_chat_templates");
    mkdir(extra, 0755);
    free(extra);
    write_text("single/additional_chat_templates/rag.jinja", "rag");
    char *broken = join_path(temp_dir, "broken.safetensors");
    write_raw_safetensors(broken,
                          "{\"__metadata__\":{\"a\":\"b\"},\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                          "\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 0, 2);
    free(broken);

    cJSON_Hooks hooks = {json_malloc, free};
    cJSON_InitHooks(&hooks);
    int failing_runs = 0;
    failing_runs += run_with_failures("safetensors_open", open_file, MLXE_OK);
    failing_runs += run_with_failures("weight_set_open (index)", open_sharded, MLXE_OK);
    failing_runs += run_with_failures("weight_set_open (glob)", open_globbed, MLXE_OK);
    failing_runs += run_with_failures("configs", load_configs, MLXE_OK);
    failing_runs += run_with_failures("writer", write_file, MLXE_OK);
    failing_runs += run_with_failures("broken file", open_broken, MLXE_ERR_FORMAT);
    cJSON_InitHooks(NULL);
    /* Each scenario allocates; every one of those allocations was made to fail once. */
    assert_true(failing_runs > 50);
    remove_tree(temp_dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaders_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
