/* fuzz/fuzz_template.c — fuzz target: the Jinja chat-template engine
 * (lexer, parser, interpreter, builtins, the JSON render context). The
 * input is a template source, then optionally a NUL byte and a JSON render
 * context; without a NUL a fixed chat context is used. The template is
 * compiled under tight mlxe_template_limits (so a hostile loop or output
 * bomb stops in milliseconds) and rendered. Built for libFuzzer
 * (-DMLXE_FUZZ=ON with clang; scripts/fuzz_template.sh) or with
 * fuzz/standalone_driver.c for a bounded mutation run under the sanitizers
 * in CTest. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/template.h"
#include "fuzz_seeds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char default_context[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi <b>there</b>\"},"
    "{\"role\":\"assistant\",\"content\":\"Hello!\",\"tool_calls\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"get_time\",\"arguments\":{\"zone\":\"UTC\",\"n\":1.5}}}]},"
    "{\"role\":\"tool\",\"content\":\"12:00\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"and now?\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"description\":\"Time\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"zone\":{\"type\":\"string\"}}}}}],"
    "\"add_generation_prompt\":true,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"enable_thinking\":false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *source = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t source_length = nul ? (size_t)(nul - data) : size;
    const char *context = nul ? (const char *)nul + 1 : default_context;
    size_t context_length = nul ? size - source_length - 1 : sizeof default_context - 1;

    /* Tight limits: every input must finish in milliseconds, whatever it
     * loops over or builds. */
    mlxe_template_limits limits;
    mlxe_template_limits_init(&limits);
    limits.max_loop_iterations = 2000;
    limits.max_recursion_depth = 20;
    limits.max_nesting = 40;
    limits.max_output_bytes = 64 * 1024;
    limits.max_memory_bytes = 8 * 1024 * 1024;

    mlxe_template *tpl = NULL;
    mlxe_error err;
    if (mlxe_template_compile(source, source_length, "fuzz.jinja", &limits, &tpl, &err) != MLXE_OK) return 0;
    char *text = NULL;
    size_t length = 0;
    if (mlxe_template_render_json(tpl, context, context_length, &text, &length, &err) == MLXE_OK)
        mlxe_template_text_free(text);
    mlxe_template_free(tpl);
    return 0;
}

/* Seeds: small chat templates of our own in the styles models ship
 * (ChatML, a Llama-like header style, a tool-calling one with macros and
 * namespace()), and one with its own JSON context after a NUL. */
static const char seed_chatml[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message.content is string %}{{ message.content | trim }}"
    "{% else %}{% for part in message.content %}{% if part.type == 'text' %}{{ part.text }}{% endif %}{% endfor %}"
    "{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
static const char seed_header[] =
    "{{- bos_token }}\n"
    "{%- if messages[0].role == 'system' %}{%- set system = messages[0].content %}{%- set rest = messages[1:] %}\n"
    "{%- else %}{%- set system = 'You are helpful.' %}{%- set rest = messages %}{%- endif %}\n"
    "<|header|>system<|/header|>{{ system }}<|eot|>\n"
    "{%- for m in rest %}\n"
    "  {%- if loop.index0 > 50 %}{{ raise_exception('too long') }}{% endif %}\n"
    "<|header|>{{ m.role | upper }}<|/header|>{{ m.content if m.content is string else m.content | tojson }}<|eot|>\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}<|header|>assistant<|/header|>{% endif %}";
static const char seed_tools[] =
    "{%- macro render_args(args) -%}{%- for k, v in args | dictsort -%}{{ k }}={{ v | tojson }}"
    "{%- if not loop.last %}, {% endif %}{%- endfor -%}{%- endmacro -%}\n"
    "{%- set ns = namespace(last_user=-1, count=0) -%}\n"
    "{%- for m in messages -%}{%- if m.role == 'user' -%}{%- set ns.last_user = loop.index0 -%}{%- endif -%}{%- endfor -%}\n"
    "{%- if tools -%}<tools>{% for t in tools %}{{ t.function | tojson(indent=2) }}{% endfor %}</tools>\n{% endif -%}\n"
    "{%- for m in messages -%}\n"
    "{%- set ns.count = ns.count + 1 -%}\n"
    "[{{ m.role }}{{ '*' if loop.index0 == ns.last_user else '' }}] {{ m.content if m.content is string else '' }}\n"
    "{%- if m.tool_calls is defined -%}{%- for c in m.tool_calls -%}"
    "<call>{{ c.function.name }}({{ render_args(c.function.arguments) }})</call>"
    "{%- endfor -%}{%- endif %}\n"
    "{% endfor -%}\n"
    "{{ ns.count }} {{ (messages | length) * 2 }} {{ 'x' ~ 3 ~ none }} {{ [1, 2.0, 'a'] | join(',') }}"
    "{%- if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>{% endif -%}";
static const char seed_own_context[] =
    "{% for k in data %}{{ k }}:{{ data[k] | string | replace('a', 'b') }};{% else %}empty{% endfor %}"
    "{{ items | selectattr('on') | map(attribute='v') | list }}{{ n // 3 }}{{ n % 4 }}{{ n / 2 }}\0"
    "{\"data\":{\"a\":[1,{\"x\":null}],\"b\":true,\"c\":\"\\u00e9\"},"
    "\"items\":[{\"on\":true,\"v\":1},{\"on\":false,\"v\":2}],\"n\":7}";

const char *mlxe_fuzz_seed(size_t index, size_t *size) {
    static const struct { const char *text; size_t size; } seeds[] = {
        {seed_chatml, sizeof seed_chatml - 1},
        {seed_header, sizeof seed_header - 1},
        {seed_tools, sizeof seed_tools - 1},
        {seed_own_context, sizeof seed_own_context - 1},
    };
    if (index >= sizeof seeds / sizeof seeds[0]) return NULL;
    *size = seeds[index].size;
    return seeds[index].text;
}

