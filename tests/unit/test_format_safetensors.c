/* Tests of dtype names, the safetensors reader (good and bad files) and the
 * writer (against byte-exact outputs from the reference implementation's
 * own tests). */
#include "test_util.h"

#include <sys/stat.h>

#include <dirent.h>

#include "base/file.h"
#include "format/dtype.h"
#include "format/safetensors.h"
#include "format/safetensors_header.h"
#include "format/safetensors_write.h"
#include "format_test_helpers.h"
#include "mlxengine/mlxengine.h"

static char temp_dir[256];

static int setup(void **state) {
    (void)state;
    test_make_temp_dir(temp_dir, sizeof temp_dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    remove_tree(temp_dir);
    return 0;
}

/* Opens path expecting failure with status; checks the message names every needle. */
static void expect_open_error(const char *path, mlxe_status status, const char *needle1,
                              const char *needle2) {
    mlxe_safetensors_file *file = (mlxe_safetensors_file *)0x1;
    mlxe_error err;
    mlxe_error_clear(&err);
    mlxe_status got = mlxe_safetensors_open(path, &file, &err);
    if (got != status) fail_msg("expected %s, got %s: %s", mlxe_status_name(status), mlxe_status_name(got), err.message);
    assert_null(file);
    assert_int_equal(err.status, status);
    assert_message_contains(err.message, path);
    if (needle1) assert_message_contains(err.message, needle1);
    if (needle2) assert_message_contains(err.message, needle2);
}

static void test_dtype_names(void **state) {
    (void)state;
    static const struct { mlxe_dtype dtype; const char *name; const char *torch; size_t size; } cases[] = {
        {MLXE_DTYPE_F32, "F32", "float32", 4}, {MLXE_DTYPE_F16, "F16", "float16", 2},
        {MLXE_DTYPE_BF16, "BF16", "bfloat16", 2}, {MLXE_DTYPE_F64, "F64", "float64", 8},
        {MLXE_DTYPE_I64, "I64", "int64", 8}, {MLXE_DTYPE_I32, "I32", "int32", 4},
        {MLXE_DTYPE_I16, "I16", "int16", 2}, {MLXE_DTYPE_I8, "I8", "int8", 1},
        {MLXE_DTYPE_U64, "U64", "uint64", 8}, {MLXE_DTYPE_U32, "U32", "uint32", 4},
        {MLXE_DTYPE_U16, "U16", "uint16", 2}, {MLXE_DTYPE_U8, "U8", "uint8", 1},
        {MLXE_DTYPE_BOOL, "BOOL", "bool", 1},
    };
    assert_int_equal(sizeof cases / sizeof cases[0], MLXE_DTYPE_COUNT - 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_string_equal(mlxe_dtype_name(cases[i].dtype), cases[i].name);
        assert_int_equal(mlxe_dtype_size(cases[i].dtype), cases[i].size);
        assert_int_equal(mlxe_dtype_from_name(cases[i].name), cases[i].dtype);
        assert_int_equal(mlxe_dtype_from_name(cases[i].torch), cases[i].dtype);
    }
    assert_int_equal(mlxe_dtype_size(MLXE_DTYPE_UNKNOWN), 0);
    assert_int_equal(mlxe_dtype_size(MLXE_DTYPE_COUNT), 0);
    assert_string_equal(mlxe_dtype_name(MLXE_DTYPE_UNKNOWN), "unknown");
    assert_string_equal(mlxe_dtype_name((mlxe_dtype)99), "unknown");
    assert_int_equal(mlxe_dtype_from_name("F8_E4M3"), MLXE_DTYPE_UNKNOWN);
    assert_int_equal(mlxe_dtype_from_name("f32"), MLXE_DTYPE_UNKNOWN);
    assert_int_equal(mlxe_dtype_from_name(NULL), MLXE_DTYPE_UNKNOWN);
}

/* Byte-exact outputs from huggingface/safetensors safetensors/src/tensor.rs
 * tests (test_serialization, test_serialization_forced_alignement, test_empty). */
static void test_writer_matches_reference_bytes(void **state) {
    (void)state;
    static const float values[6] = {0, 1, 2, 3, 4, 5};
    static const unsigned char expected_attn[] = {
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
        116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
        58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
        101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
        0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
    static const unsigned char expected_aligned[] = {
        72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
        121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
        91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
        115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
        32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
        160, 64};
    static const unsigned char expected_empty[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
    static const unsigned char expected_meta[] = {
        40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
        95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
        116, 34, 125, 125, 32, 32, 32, 32, 32};
    mlxe_error err;
    unsigned char *bytes = NULL;
    size_t size = 0;

    mlxe_safetensors_write_tensor t = {"attn.0", MLXE_DTYPE_F32, 3, {1, 2, 3}, values};
    assert_int_equal(mlxe_safetensors_serialize(&t, 1, NULL, 0, &bytes, &size, &err), MLXE_OK);
    assert_int_equal(size, sizeof expected_attn);
    assert_memory_equal(bytes, expected_attn, size);
    free(bytes);

    mlxe_safetensors_write_tensor t2 = {"attn0", MLXE_DTYPE_F32, 4, {1, 1, 2, 3}, values};
    assert_int_equal(mlxe_safetensors_serialize(&t2, 1, NULL, 0, &bytes, &size, &err), MLXE_OK);
    assert_int_equal(size, sizeof expected_aligned);
    assert_memory_equal(bytes, expected_aligned, size);
    free(bytes);

    assert_int_equal(mlxe_safetensors_serialize(NULL, 0, NULL, 0, &bytes, &size, &err), MLXE_OK);
    assert_int_equal(size, sizeof expected_empty);
    assert_memory_equal(bytes, expected_empty, size);
    free(bytes);

    mlxe_safetensors_metadata_entry meta = {"framework", "pt"};
    assert_int_equal(mlxe_safetensors_serialize(NULL, 0, &meta, 1, &bytes, &size, &err), MLXE_OK);
    assert_int_equal(size, sizeof expected_meta);
    assert_memory_equal(bytes, expected_meta, size);

    /* The in-memory parser accepts what the writer made. */
    mlxe_safetensors_header header;
    assert_int_equal(mlxe_safetensors_parse_header(bytes, size, "mem", &header, &err), MLXE_OK);
    assert_int_equal(header.n_tensors, 0);
    assert_int_equal(header.n_metadata, 1);
    assert_string_equal(header.metadata_values[0], "pt");
    mlxe_safetensors_header_free(&header);
    free(bytes);
}

/* One tensor of every dtype, plus a scalar and an empty tensor, through the
 * writer and back through the reader. */
static void test_round_trip_every_dtype(void **state) {
    (void)state;
    enum { N = MLXE_DTYPE_COUNT - 1 };
    mlxe_safetensors_write_tensor tensors[N + 2];
    unsigned char *buffers[N + 2];
    char names[N + 2][32];
    for (int i = 0; i < N; i++) {
        mlxe_dtype dtype = (mlxe_dtype)(i + 1);
        int64_t rows = 2 + i % 3, cols = 3 + i;
        size_t bytes = (size_t)(rows * cols) * mlxe_dtype_size(dtype);
        buffers[i] = malloc(bytes);
        for (size_t b = 0; b < bytes; b++) buffers[i][b] = (unsigned char)(b * 31 + i);
        snprintf(names[i], sizeof names[i], "layer.%d.%s", i, mlxe_dtype_name(dtype));
        tensors[i] = (mlxe_safetensors_write_tensor){names[i], dtype, 2, {rows, cols}, buffers[i]};
    }
    static const double pi = 3.14159;
    snprintf(names[N], sizeof names[N], "scalar");
    tensors[N] = (mlxe_safetensors_write_tensor){names[N], MLXE_DTYPE_F64, 0, {0}, &pi};
    buffers[N] = NULL;
    snprintf(names[N + 1], sizeof names[N + 1], "empty");
    tensors[N + 1] = (mlxe_safetensors_write_tensor){names[N + 1], MLXE_DTYPE_BF16, 2, {0, 4}, NULL};
    buffers[N + 1] = NULL;
    mlxe_safetensors_metadata_entry meta[] = {{"format", "mlx"}, {"note", "quote \" backslash \\ tab \t é"}};

    char *path = join_path(temp_dir, "all.safetensors");
    mlxe_error err;
    assert_int_equal(mlxe_safetensors_write(path, tensors, N + 2, meta, 2, &err), MLXE_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    mlxe_safetensors_file *file = NULL;
    assert_int_equal(mlxe_safetensors_open(path, &file, &err), MLXE_OK);
    assert_string_equal(mlxe_safetensors_path(file), path);
    assert_int_equal(mlxe_safetensors_count(file), N + 2);
    assert_string_equal(mlxe_safetensors_metadata(file, "format"), "mlx");
    assert_string_equal(mlxe_safetensors_metadata(file, "note"), "quote \" backslash \\ tab \t é");
    assert_null(mlxe_safetensors_metadata(file, "absent"));
    for (int i = 0; i < N; i++) {
        const mlxe_tensor_info *t = mlxe_safetensors_find(file, names[i]);
        assert_non_null(t);
        assert_string_equal(t->name, names[i]);
        assert_int_equal(t->dtype, tensors[i].dtype);
        assert_int_equal(t->n_dims, 2);
        assert_int_equal(t->shape[0], tensors[i].shape[0]);
        assert_int_equal(t->shape[1], tensors[i].shape[1]);
        assert_int_equal(t->n_elements, tensors[i].shape[0] * tensors[i].shape[1]);
        assert_int_equal(t->n_bytes, (size_t)t->n_elements * mlxe_dtype_size(t->dtype));
        assert_memory_equal(t->data, buffers[i], t->n_bytes);
        /* The writer's ordering keeps every tensor aligned to its element size. */
        assert_int_equal((uintptr_t)t->data % mlxe_dtype_size(t->dtype), 0);
        assert_true(t->aligned);
        assert_string_equal(t->file, path);
    }
    const mlxe_tensor_info *scalar = mlxe_safetensors_find(file, "scalar");
    assert_non_null(scalar);
    assert_int_equal(scalar->n_dims, 0);
    assert_int_equal(scalar->n_elements, 1);
    assert_memory_equal(scalar->data, &pi, sizeof pi);
    const mlxe_tensor_info *empty = mlxe_safetensors_find(file, "empty");
    assert_non_null(empty);
    assert_int_equal(empty->n_bytes, 0);
    assert_int_equal(empty->n_elements, 0);
    assert_null(empty->data);
    assert_null(mlxe_safetensors_find(file, "missing"));
    assert_null(mlxe_safetensors_find(file, NULL));
    assert_null(mlxe_safetensors_at(file, N + 2));
    /* _at walks the file in data-offset order. */
    const unsigned char *previous = NULL;
    for (size_t i = 0; i < mlxe_safetensors_count(file); i++) {
        const mlxe_tensor_info *t = mlxe_safetensors_at(file, i);
        assert_non_null(t);
        if (t->data) {
            if (previous) assert_true((const unsigned char *)t->data > previous);
            previous = t->data;
        }
    }
    mlxe_safetensors_close(file);
    mlxe_safetensors_close(NULL);
    assert_int_equal(mlxe_safetensors_count(NULL), 0);
    for (int i = 0; i < N + 2; i++) free(buffers[i]);
    free(path);
}

/* Thousands of tensors: every name found by lookup. */
static void test_many_tensors_lookup(void **state) {
    (void)state;
    enum { N = 3000 };
    mlxe_safetensors_write_tensor *tensors = calloc(N, sizeof *tensors);
    char (*names)[48] = calloc(N, sizeof *names);
    uint32_t *values = calloc(N, sizeof *values);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "model.layers.%d.mlp.w%d.weight", i / 7, i % 7);
        values[i] = (uint32_t)i;
        tensors[i] = (mlxe_safetensors_write_tensor){names[i], MLXE_DTYPE_U32, 1, {1}, &values[i]};
    }
    char *path = join_path(temp_dir, "many.safetensors");
    mlxe_error err;
    assert_int_equal(mlxe_safetensors_write(path, tensors, N, NULL, 0, &err), MLXE_OK);
    mlxe_safetensors_file *file = NULL;
    assert_int_equal(mlxe_safetensors_open(path, &file, &err), MLXE_OK);
    assert_int_equal(mlxe_safetensors_count(file), N);
    for (int i = 0; i < N; i++) {
        const mlxe_tensor_info *t = mlxe_safetensors_find(file, names[i]);
        assert_non_null(t);
        assert_int_equal(*(const uint32_t *)t->data, (uint32_t)i);
    }
    mlxe_safetensors_close(file);
    free(path);
    free(tensors);
    free(names);
    free(values);
}

static void test_bad_header_lengths(void **state) {
    (void)state;
    char *path = join_path(temp_dir, "bad.safetensors");
    test_write_file(path, "abc", 3);
    expect_open_error(path, MLXE_ERR_FORMAT, "3 bytes", "too few");
    test_write_file(path, "", 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "0 bytes", NULL);
    /* Length past the end of the file. */
    write_raw_safetensors(path, "{}", 5000, 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "5000", "download");
    /* Absurd length (bigger than the 100 MB the reference allows). */
    write_raw_safetensors(path, "{}", 100000001, 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "100000001", "more than");
    write_raw_safetensors(path, "{}", UINT64_MAX, 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "18446744073709551615", NULL);
    /* Too short to hold JSON. */
    unsigned char one[9] = {1, 0, 0, 0, 0, 0, 0, 0, '{'};
    test_write_file(path, one, sizeof one);
    expect_open_error(path, MLXE_ERR_FORMAT, "too small", NULL);
    /* Missing file. */
    char *missing = join_path(temp_dir, "nope.safetensors");
    expect_open_error(missing, MLXE_ERR_NOT_FOUND, NULL, NULL);
    free(missing);
    free(path);
}

static void test_bad_json(void **state) {
    (void)state;
    char *path = join_path(temp_dir, "json.safetensors");
    write_raw_safetensors(path, "{\"a\": {\"dtype\": \"F32\",", 0, 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "not valid JSON", NULL);
    write_raw_safetensors(path, "[1, 2]", 0, 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "array, not an object", NULL);
    write_raw_safetensors(path, "{} x", 0, 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "unexpected bytes", NULL);
    write_raw_safetensors(path, "{\"\xff\": 1}", 0, 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "UTF-8", NULL);
    /* The header length cuts the JSON short: the parser must not read past it. */
    const char *full = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    write_raw_safetensors(path, full, strlen(full) - 1, 0);
    expect_open_error(path, MLXE_ERR_FORMAT, "not valid JSON", NULL);
    /* Padding with spaces is fine, as the reference writer does. */
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}   ", 0, 2);
    mlxe_safetensors_file *file = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_safetensors_open(path, &file, &err), MLXE_OK);
    assert_int_equal(mlxe_safetensors_count(file), 1);
    mlxe_safetensors_close(file);
    free(path);
}

static void test_bad_entries(void **state) {
    (void)state;
    char *path = join_path(temp_dir, "entry.safetensors");
    static const struct {
        const char *header;
        size_t data;
        mlxe_status status;
        const char *needle1, *needle2;
    } cases[] = {
        /* shape × dtype size does not match the byte span */
        {"{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
         MLXE_ERR_FORMAT, "'w.weight'", "needs 24 bytes"},
        /* overlapping tensors */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
         MLXE_ERR_FORMAT, "'a'", "'b' [4, 12) overlap"},
        /* a gap between tensors */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}", 6,
         MLXE_ERR_FORMAT, "'b'", "contiguous"},
        /* bytes after the last tensor */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 10,
         MLXE_ERR_FORMAT, "cover only 2", NULL},
        /* duplicate names (JSON allows them; safetensors does not) */
        {"{\"dup\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
         "\"dup\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 4,
         MLXE_ERR_FORMAT, "'dup'", "twice"},
        /* unknown dtype */
        {"{\"q\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
         MLXE_ERR_FORMAT, "'q'", "'Q7'"},
        /* a real safetensors dtype we do not handle */
        {"{\"f8\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
         MLXE_ERR_UNSUPPORTED, "'f8'", "F8_E4M3"},
        /* torch spelling is not a safetensors dtype */
        {"{\"t\":{\"dtype\":\"float32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         MLXE_ERR_FORMAT, "'t'", "'float32'"},
        /* tensor past the end of the data area (truncated) */
        {"{\"big\":{\"dtype\":\"U8\",\"shape\":[100],\"data_offsets\":[0,100]}}", 60,
         MLXE_ERR_FORMAT, "'big' ends at byte 100", "data area has 60 bytes"},
        /* begin after end */
        {"{\"r\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}", 4,
         MLXE_ERR_FORMAT, "'r'", "end before they begin"},
        /* missing or mistyped fields */
        {"{\"m\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, MLXE_ERR_FORMAT, "'m'", "dtype"},
        {"{\"m\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, MLXE_ERR_FORMAT, "'m'", "shape"},
        {"{\"m\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, MLXE_ERR_FORMAT, "'m'", "data_offsets"},
        {"{\"m\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1, MLXE_ERR_FORMAT, "'m'", "data_offsets"},
        {"{\"m\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,\"1\"]}}", 1, MLXE_ERR_FORMAT, "'m'", "data_offsets"},
        {"{\"m\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, MLXE_ERR_FORMAT, "'m'", "shape entry 0"},
        {"{\"m\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1, MLXE_ERR_FORMAT, "'m'", "shape entry 0"},
        {"{\"m\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", 1, MLXE_ERR_FORMAT, "'m'", "dtype"},
        {"{\"m\":[1,2,3]}", 0, MLXE_ERR_FORMAT, "'m'", "not an object"},
        {"{\"m\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
         MLXE_ERR_UNSUPPORTED, "'m'", "9 dimensions"},
        /* shape product overflows */
        {"{\"o\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
         MLXE_ERR_FORMAT, "'o'", "overflows"},
        {"{\"o\":{\"dtype\":\"F64\",\"shape\":[1099511627776,2097152],\"data_offsets\":[0,8]}}", 8,
         MLXE_ERR_FORMAT, "'o'", "overflows"},
        /* metadata values must be strings */
        {"{\"__metadata__\":{\"format\":1}}", 0, MLXE_ERR_FORMAT, "'format'", "string"},
        {"{\"__metadata__\":[1]}", 0, MLXE_ERR_FORMAT, "__metadata__", "object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw_safetensors(path, cases[i].header, 0, cases[i].data);
        expect_open_error(path, cases[i].status, cases[i].needle1, cases[i].needle2);
    }
    free(path);
}

/* A good file cut short, as an interrupted download leaves it. */
static void test_truncated_file(void **state) {
    (void)state;
    float values[64];
    for (int i = 0; i < 64; i++) values[i] = (float)i;
    mlxe_safetensors_write_tensor tensors[] = {
        {"model.embed_tokens.weight", MLXE_DTYPE_F32, 2, {8, 4}, values},
        {"model.layers.3.mlp.up_proj.weight", MLXE_DTYPE_F32, 2, {4, 8}, values + 32},
    };
    char *path = join_path(temp_dir, "model-00002-of-00002.safetensors");
    mlxe_error err;
    assert_int_equal(mlxe_safetensors_write(path, tensors, 2, NULL, 0, &err), MLXE_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 10), 0);
    /* The writer orders same-dtype tensors by name, so up_proj is last. */
    expect_open_error(path, MLXE_ERR_FORMAT, "'model.layers.3.mlp.up_proj.weight' ends at byte 256",
                      "data area has 246 bytes");
    free(path);
}

/* MLX's save_safetensors writes the header unpadded and the tensors in hash
 * order, so data can sit at any byte: the reader accepts it and says so. */
static void test_unaligned_data(void **state) {
    (void)state;
    char *path = join_path(temp_dir, "mlx.safetensors");
    /* Header of 127 bytes (odd, so nothing is aligned); a BF16 tensor of 3 elements
     * first, so the U32 tensor after it starts at data byte 6. */
    const char *header = "{\"__metadata__\":{},\"s\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                         "\"w\":{\"dtype\":\"U32\",\"shape\":[2],\"data_offsets\":[6,14]}}";
    write_raw_safetensors(path, header, 0, 14);
    mlxe_safetensors_file *file = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_safetensors_open(path, &file, &err), MLXE_OK);
    const mlxe_tensor_info *s = mlxe_safetensors_find(file, "s");
    const mlxe_tensor_info *w = mlxe_safetensors_find(file, "w");
    size_t data_start = 8 + strlen(header);
    assert_int_equal(s->aligned, (data_start % 2) == 0);
    assert_int_equal(w->aligned, ((data_start + 6) % 4) == 0);
    assert_false(s->aligned && w->aligned);
    /* The bytes are still the file's: the helper fills data byte i with i*7+1. */
    assert_int_equal(((const unsigned char *)w->data)[0], 6 * 7 + 1);
    assert_null(mlxe_safetensors_metadata(file, "format"));
    mlxe_safetensors_close(file);
    free(path);
}

static void test_writer_errors(void **state) {
    (void)state;
    float v[2] = {1, 2};
    mlxe_error err;
    char *path = join_path(temp_dir, "w.safetensors");
    mlxe_safetensors_write_tensor dup[] = {{"x", MLXE_DTYPE_F32, 1, {1}, v}, {"x", MLXE_DTYPE_F16, 1, {1}, v}};
    assert_int_equal(mlxe_safetensors_write(path, dup, 2, NULL, 0, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "'x' given twice");
    mlxe_safetensors_write_tensor bad_dtype = {"y", MLXE_DTYPE_UNKNOWN, 1, {1}, v};
    assert_int_equal(mlxe_safetensors_write(path, &bad_dtype, 1, NULL, 0, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "'y'");
    mlxe_safetensors_write_tensor no_data = {"z", MLXE_DTYPE_F32, 1, {2}, NULL};
    assert_int_equal(mlxe_safetensors_write(path, &no_data, 1, NULL, 0, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "'z'");
    mlxe_safetensors_write_tensor reserved = {"__metadata__", MLXE_DTYPE_F32, 1, {1}, v};
    assert_int_equal(mlxe_safetensors_write(path, &reserved, 1, NULL, 0, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_safetensors_write_tensor negative = {"n", MLXE_DTYPE_F32, 1, {-1}, v};
    assert_int_equal(mlxe_safetensors_write(path, &negative, 1, NULL, 0, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_safetensors_metadata_entry meta[] = {{"k", "1"}, {"k", "2"}};
    assert_int_equal(mlxe_safetensors_write(path, NULL, 0, meta, 2, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "'k'");
    assert_false(mlxe_file_exists(path));
    /* Unwritable destination: an IO error and no temporary file left behind. */
    char *nowhere = join_path(temp_dir, "no/such/dir/x.safetensors");
    mlxe_safetensors_write_tensor ok = {"a", MLXE_DTYPE_F32, 1, {2}, v};
    assert_int_equal(mlxe_safetensors_write(nowhere, &ok, 1, NULL, 0, &err), MLXE_ERR_IO);
    assert_message_contains(err.message, nowhere);
    free(nowhere);
    /* Overwriting an existing file replaces it whole. */
    assert_int_equal(mlxe_safetensors_write(path, &ok, 1, NULL, 0, &err), MLXE_OK);
    mlxe_safetensors_write_tensor ok2 = {"b", MLXE_DTYPE_F32, 1, {1}, v + 1};
    assert_int_equal(mlxe_safetensors_write(path, &ok2, 1, NULL, 0, &err), MLXE_OK);
    mlxe_safetensors_file *file = NULL;
    assert_int_equal(mlxe_safetensors_open(path, &file, &err), MLXE_OK);
    assert_null(mlxe_safetensors_find(file, "a"));
    assert_non_null(mlxe_safetensors_find(file, "b"));
    mlxe_safetensors_close(file);
    /* No temporary files remain in the folder. */
    DIR *d = opendir(temp_dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) assert_null(strstr(e->d_name, ".tmp-"));
    closedir(d);
    free(path);
}

/* Opening and closing good and bad files many times must not leak (LSan). */
static void test_open_close_repeatedly(void **state) {
    (void)state;
    float v[4] = {1, 2, 3, 4};
    mlxe_safetensors_write_tensor t[] = {{"a", MLXE_DTYPE_F32, 1, {2}, v}, {"b", MLXE_DTYPE_F32, 1, {2}, v + 2}};
    mlxe_safetensors_metadata_entry meta = {"format", "pt"};
    char *good = join_path(temp_dir, "good.safetensors");
    char *bad = join_path(temp_dir, "bad2.safetensors");
    mlxe_error err;
    assert_int_equal(mlxe_safetensors_write(good, t, 2, &meta, 1, &err), MLXE_OK);
    write_raw_safetensors(bad, "{\"__metadata__\":{\"x\":\"y\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                               "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 0, 2);
    for (int i = 0; i < 200; i++) {
        mlxe_safetensors_file *file = NULL;
        assert_int_equal(mlxe_safetensors_open(good, &file, &err), MLXE_OK);
        assert_non_null(mlxe_safetensors_find(file, "b"));
        mlxe_safetensors_close(file);
        assert_int_equal(mlxe_safetensors_open(bad, &file, &err), MLXE_ERR_FORMAT);
        assert_null(file);
    }
    free(good);
    free(bad);
}

/* Random byte edits of a valid file, parsed from exact-size heap buffers
 * (so ASan sees any read past the end): the parser must either reject the
 * buffer with a format error or return tensors lying inside it. */
static void test_mutated_headers(void **state) {
    (void)state;
    float v[12] = {0};
    uint16_t h[4] = {0};
    mlxe_safetensors_write_tensor t[] = {
        {"model.layers.0.self_attn.q_proj.weight", MLXE_DTYPE_F32, 2, {3, 4}, v},
        {"model.norm.weight", MLXE_DTYPE_BF16, 1, {4}, h},
        {"scalar", MLXE_DTYPE_U8, 0, {0}, v},
    };
    mlxe_safetensors_metadata_entry meta = {"format", "pt"};
    unsigned char *good = NULL;
    size_t size = 0;
    mlxe_error err;
    assert_int_equal(mlxe_safetensors_serialize(t, 3, &meta, 1, &good, &size, &err), MLXE_OK);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | good[i];
    static const char interesting[] = "{}[],:\"0123456789-e. \\";
    unsigned int seed = 12345;
    int accepted = 0;
    for (int round = 0; round < 3000; round++) {
        size_t n = size;
        if (round % 10 == 9) n = (size_t)(rand_r(&seed) % (int)size); /* truncation */
        unsigned char *buf = malloc(n ? n : 1);
        memcpy(buf, good, n);
        int edits = 1 + rand_r(&seed) % 3;
        for (int e = 0; e < edits && n > 8; e++) {
            /* Mostly edit the JSON; sometimes the length or the data. */
            size_t at = (rand_r(&seed) % 8 == 0) ? (size_t)(rand_r(&seed) % 8)
                                                 : 8 + (size_t)rand_r(&seed) % (size_t)header_len;
            if (at >= n) continue;
            buf[at] = (rand_r(&seed) % 2) ? (unsigned char)interesting[rand_r(&seed) % (sizeof interesting - 1)]
                                          : (unsigned char)rand_r(&seed);
        }
        mlxe_safetensors_header header;
        mlxe_status status = mlxe_safetensors_parse_header(buf, n, "fuzz", &header, &err);
        if (status == MLXE_OK) {
            accepted++;
            for (size_t i = 0; i < header.n_tensors; i++) {
                const mlxe_tensor_info *ti = &header.tensors[i];
                if (ti->n_bytes) {
                    assert_true((const unsigned char *)ti->data >= buf + header.data_start);
                    assert_true((const unsigned char *)ti->data + ti->n_bytes <= buf + n);
                    volatile unsigned char last = ((const unsigned char *)ti->data)[ti->n_bytes - 1];
                    (void)last;
                }
                assert_int_equal(mlxe_safetensors_header_find(&header, ti->name), i);
            }
            mlxe_safetensors_header_free(&header);
        } else {
            if (status != MLXE_ERR_FORMAT && status != MLXE_ERR_UNSUPPORTED)
                fail_msg("unexpected status %s: %s", mlxe_status_name(status), err.message);
            assert_message_contains(err.message, "fuzz");
            assert_null(header.tensors);
        }
        free(buf);
    }
    /* Some edits (inside names or metadata) keep the file valid. */
    assert_true(accepted > 0);
    free(good);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_names),
        cmocka_unit_test(test_writer_matches_reference_bytes),
        cmocka_unit_test_setup_teardown(test_round_trip_every_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_tensors_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_header_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unaligned_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_close_repeatedly, setup, teardown),
        cmocka_unit_test(test_mutated_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
