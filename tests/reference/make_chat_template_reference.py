#!/usr/bin/env python3
"""Expected chat-template renderings from Hugging Face transformers (the oracle for iol's Jinja subset).

Usage (on a machine with transformers, e.g. the H100 machine):
  python3 tests/reference/make_chat_template_reference.py --tokenizers build/tokenizers \
      --out tests/fixtures/chat_template
--tokenizers DIR holds NAME/tokenizer.json and NAME/tokenizer_config.json for NAME in llama3, llama2,
qwen3 (scripts/fetch_tokenizers.sh puts them in build/tokenizers).

Writes into --out:
  jinja_cases.json  every case of JINJA_CASES (template + context) with the text transformers' own
                    Jinja environment renders (sandboxed, trim_blocks, lstrip_blocks, loopcontrols,
                    its tojson / raise_exception / strftime_now), or the error it raises.
  NAME.json         for llama3, llama2, qwen3: every conversation of CONVERSATIONS rendered with
                    tokenizer.apply_chat_template (the template of the tokenizer_config.json), the ids
                    of that text (encode without special tokens, as apply_chat_template tokenizes),
                    or the error transformers raises (Llama 2's config has no chat_template).
  llama2-chat.json  the same conversations through chat_templates/llama-2-chat.jinja on Llama 2.
Without transformers (--jinja-only) the Jinja cases are rendered by a local jinja2 set up the same
way; the committed fixtures come from transformers (see the "renderer" field).
"""
import argparse
import json
import os
import sys
from datetime import datetime

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ---------------------------------------------------------------------------------------------
# Jinja conformance cases: each construct of the subset, its edge cases, and errors.
# ---------------------------------------------------------------------------------------------
MSGS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi \u00e9t\u00e9 \U0001F600"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "  spaced  \n"},
]
DATA = {
    "n": 7, "neg": -7, "f": 2.5, "big": 1e20, "tiny": 1e-7, "whole": 3.0, "t": True, "no": False, "nothing": None,
    "s": "Hello, World", "u": "\u00e9t\u00e9 \u65e5\u672c \U0001F600", "ws": " \t\n pad \n",
    "empty": "", "xs": [3, 1, 2], "words": ["b", "a", "c", "a"], "nested": {"a": [1, 2.0, {"b": None}], "c": "q'\"x"},
    "d": {"z": 1, "a": 2, "m": 3}, "people": [{"name": "Ann", "age": 31, "tags": ["x"]}, {"name": "Bob", "age": 25},
                                              {"name": "Cy", "age": 40, "admin": True}],
    "ctrl": "tab\there\u0001\u001f\u007f\"\\/",
}


def case(name, template, **context):
    return {"name": name, "template": template, "context": context}


JINJA_CASES = [
    # text and whitespace control (trim_blocks + lstrip_blocks, as transformers sets them)
    case("plain_text", "just text\n"),
    case("trailing_newline_kept_once", "a\n\n"),
    case("crlf_text", "a\r\nb\rc"),
    case("trim_blocks_removes_newline_after_tag", "{% if true %}\nyes\n{% endif %}\nafter"),
    case("lstrip_blocks_indented_tags", "start\n    {% if true %}\n    inner\n    {% endif %}\nend"),
    case("lstrip_not_for_expressions", "a\n    {{ 'x' }}\nb"),
    case("lstrip_only_whitespace_before_tag", "a  {% if true %}b{% endif %}  c"),
    case("minus_strips_both_sides", "a   \n  {%- if true -%}  \n  b  \n  {%- endif -%}\n  c"),
    case("expression_minus", "a  \n {{- 'x' -}} \n b"),
    case("plus_disables_lstrip", "a\n    {%+ if true %}b{% endif %}"),
    case("plus_disables_trim", "{% if true +%}\nb{% endif %}"),
    case("comments_are_dropped", "a{# a comment {{ x }} #}b\n  {# indented comment #}\nc{#- trimmed -#}  d"),
    case("tabs_before_tag", "x\n\t\t{% if true %}y{% endif %}"),
    case("raw_block", "{% raw %}{{ not rendered }}{% endraw %}"),
    case("tag_after_trimmed_newline", "{% for i in [1, 2] %}\n    {% if i %}{{ i }}{% endif %}\n{% endfor %}"),
    # literals and output conversion (Python's str())
    case("ints_and_floats", "{{ 1 }} {{ -3 }} {{ 2.5 }} {{ 1.0 }} {{ 0.1 }} {{ 1e3 }} {{ 1_000 }} {{ f }} {{ big }} {{ tiny }} {{ whole }}", **DATA),
    case("bools_and_none", "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }} {{ t }} {{ nothing }}", **DATA),
    case("string_escapes", "{{ 'a\\nb' }}|{{ \"q\\\"d\" }}|{{ 'it\\'s' }}|{{ 'tab\\tx' }}|{{ 'back\\\\slash' }}"),
    case("adjacent_strings_concatenate", "{{ 'a' 'b' \"c\" }}"),
    case("list_and_dict_repr", "{{ [1, 'a', none, true, 2.5] }} {{ {'k': 'v', 'n': [1]} }} {{ nested }}", **DATA),
    case("tuple_repr", "{{ (1, 'a') }} {{ (1,) }}"),
    case("string_repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'nl\\n'] }}"),
    case("undefined_renders_empty", "[{{ missing }}][{{ d.nokey }}][{{ xs[10] }}]", **DATA),
    # operators (Python semantics)
    case("arithmetic", "{{ 7 + 2 }} {{ 7 - 9 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2.5 * 2 }}"),
    case("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 * 3 ~ 4 }} {{ 10 - 2 - 3 }} {{ 2 ** 3 ** 2 }}"),
    case("string_ops", "{{ 'ab' + 'cd' }} {{ 'ab' ~ 5 ~ none }} {{ 'ab' * 3 }} {{ [1] + [2, 3] }}"),
    case("comparisons", "{{ 1 < 2 }} {{ 2 <= 1 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ true == 1 }} {{ [1, 2] == [1, 2] }} {{ none == none }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}"),
    case("membership", "{{ 'ell' in s }} {{ 'x' not in s }} {{ 2 in xs }} {{ 'a' in d }} {{ 'q' in d }} {{ not 1 in xs }}", **DATA),
    case("boolean_operators_return_operands", "[{{ '' or 'x' }}][{{ 'a' and 'b' }}][{{ 0 and 1 }}][{{ none or [] }}][{{ not '' }}][{{ not xs }}]", **DATA),
    case("conditional_expression", "{{ 'y' if t else 'n' }} {{ 'y' if no else 'n' }} [{{ 'y' if no }}] {{ 1 if no else 2 if t else 3 }}", **DATA),
    case("unary_and_filter_binding", "{{ -n|abs }} {{ (-n)|abs }} {{ xs|length - 1 }} {{ not xs|length }}", **DATA),
    case("is_binds_tighter_than_compare", "{{ (1 == 1) != 2 is even }} {{ not nothing is none }} {{ n is odd and t }}", **DATA),
    # attribute and item access, slicing
    case("attribute_and_item", "{{ messages[0].role }} {{ messages[0]['content'] }} {{ people[1].name }} {{ d['a'] }}", messages=MSGS, **DATA),
    case("negative_index", "{{ xs[-1] }} {{ messages[-1].role }} {{ s[0] }} {{ s[-1] }} {{ u[0] }} {{ u[-1] }}", messages=MSGS, **DATA),
    case("slices", "{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[5:] }} {{ s[7:] }} {{ s[::-1] }} {{ u[1:4] }} {{ u[::-1] }}", **DATA),
    case("slice_of_messages", "{% for m in messages[1:] %}{{ m.role }},{% endfor %}{% for m in messages[::-1] %}{{ loop.index0 }}{{ m.role[0] }}{% endfor %}", messages=MSGS),
    case("missing_attribute_is_undefined", "{{ messages[0].tool_calls is defined }} {{ messages[0].tool_calls is undefined }} {% if not messages[0].tool_calls %}none{% endif %}", messages=MSGS),
    # filters
    case("filter_length", "{{ xs|length }} {{ s|length }} {{ u|length }} {{ d|length }} {{ xs|count }} {{ messages|length }}", messages=MSGS, **DATA),
    case("filter_tojson", "{{ nested|tojson }} {{ u|tojson }} {{ ctrl|tojson }} {{ [1.0, 0.5, 1e20, -0.0, 3]|tojson }} {{ t|tojson }} {{ nothing|tojson }}", **DATA),
    case("filter_tojson_indent", "{{ people|tojson(indent=2) }}|{{ {}|tojson(indent=2) }}|{{ []|tojson(indent=4) }}|{{ d|tojson(indent=2, sort_keys=true) }}", **DATA),
    case("filter_tojson_tools", "{% for tool in tools %}{{ tool|tojson }}\n{% endfor %}", tools=[
        {"type": "function", "function": {"name": "get_weather", "description": "Weather \u2600 in a city",
                                          "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                         "days": {"type": "integer", "minimum": 1, "maximum": 7.5}},
                                                         "required": ["city"], "additionalProperties": False}}}]),
    case("filter_trim", "[{{ ws|trim }}][{{ '  x  '|trim }}][{{ 'xxhixx'|trim('x') }}][{{ '\u3000wide\u00a0'|trim }}]", **DATA),
    case("filter_case", "{{ s|upper }} {{ s|lower }} {{ 'hello world'|capitalize }} {{ 'hello wORLD'|title }} {{ '\u00e9t\u00e9'|upper }}", **DATA),
    case("filter_join", "{{ words|join(', ') }} {{ xs|join }} {{ people|join(' ', attribute='name') }}", **DATA),
    case("filter_first_last", "{{ xs|first }} {{ xs|last }} {{ s|first }} {{ s|last }}", **DATA),
    case("filter_default", "{{ missing|default('dflt') }} {{ s|default('dflt') }} [{{ empty|default('e') }}] [{{ empty|default('e', true) }}] {{ nothing|default('n') }} {{ missing|d('short') }}", **DATA),
    case("filter_conversions", "{{ '42'|int }} {{ 3.9|int }} {{ 'x'|int }} {{ '2.5'|float }} {{ 3|float }} {{ 42|string ~ '!' }} {{ xs|list }} {{ 'ab'|list }} {{ -2|abs }}"),
    case("filter_reverse_sort_unique", "{{ xs|reverse|list }} {{ s|reverse }} {{ xs|sort }} {{ words|sort(reverse=true) }} {{ words|unique|list }} {{ people|sort(attribute='age')|map(attribute='name')|join(',') }}", **DATA),
    case("filter_min_max_sum", "{{ xs|min }} {{ xs|max }} {{ xs|sum }} {{ people|sum(attribute='age') }}", **DATA),
    case("filter_replace_round", "{{ s|replace('l', 'L') }} {{ s|replace('l', 'L', 2) }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 7.1|round(0, 'ceil') }}", **DATA),
    case("filter_items_dictsort", "{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}", **DATA),
    case("filter_map", "{{ people|map(attribute='name')|list }} {{ words|map('upper')|join }} {{ people|map(attribute='admin', default=false)|list }}", **DATA),
    case("filter_select_reject", "{{ xs|select('odd')|list }} {{ xs|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ xs|select('greaterthan', 1)|list }}", **DATA),
    case("filter_selectattr", "{{ people|selectattr('admin')|map(attribute='name')|list }} {{ people|rejectattr('admin')|map(attribute='name')|list }} {{ people|selectattr('age', 'gt', 30)|map(attribute='name')|list }} {{ people|selectattr('name', 'equalto', 'Bob')|list|length }} {{ people|selectattr('tags', 'defined')|list|length }}", **DATA),
    case("filter_reject_equalto", "{{ words|reject('equalto', 'a')|list }} {{ words|select('in', ['a', 'c'])|list }}", **DATA),
    case("filter_indent", "{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(4, true) }}|{{ 'a\\nb'|indent('> ', first=true) }}"),
    case("filter_wordcount_center", "{{ 'one two  three'|wordcount }} [{{ 'ab'|center(6) }}]"),
    case("filter_batch_slice_not_needed_but_safe", "{{ xs|batch(2)|list }}", **DATA),
    # tests
    case("tests_defined", "{{ n is defined }} {{ missing is defined }} {{ missing is undefined }} {{ nothing is none }} {{ n is not none }} {{ nothing is not none }}", **DATA),
    case("tests_types", "{{ s is string }} {{ n is string }} {{ n is number }} {{ f is number }} {{ t is number }} {{ n is integer }} {{ f is float }} {{ t is boolean }} {{ d is mapping }} {{ xs is mapping }} {{ xs is iterable }} {{ s is iterable }} {{ d is iterable }} {{ n is iterable }} {{ xs is sequence }} {{ s is sequence }} {{ d is sequence }}", **DATA),
    case("tests_values", "{{ t is true }} {{ 1 is true }} {{ no is false }} {{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ n is equalto 7 }} {{ n is eq 7 }} {{ n is ne 7 }} {{ n is gt 3 }} {{ n is lt 3 }} {{ n is ge 7 }} {{ n is le 6 }} {{ 2 is in xs }} {{ nothing is sameas none }} {{ 'abc' is lower }} {{ 'ABC' is upper }}", **DATA),
    case("tests_callable", "{{ raise_exception is callable }} {{ n is callable }} {{ strftime_now is defined }} {{ namespace is defined }}", **DATA),
    # string methods (Python's str)
    case("method_strip", "[{{ ws.strip() }}][{{ ws.lstrip() }}][{{ ws.rstrip() }}][{{ '\\n\\nx\\n'.strip('\\n') }}][{{ 'xyhiyx'.strip('xy') }}][{{ 'aab'.lstrip('a') }}]", **DATA),
    case("method_split", "{{ 'a,b,,c'.split(',') }} {{ ' a  b \\n c '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'x</think>y</think>z'.split('</think>')[-1] }} {{ 'abc'.split('abc') }} {{ 'a b c'.rsplit(' ', 1) }}"),
    case("method_startswith", "{{ s.startswith('Hell') }} {{ s.endswith('World') }} {{ s.startswith(('x', 'H')) }} {{ s.endswith('x') }}", **DATA),
    case("method_case_replace_find", "{{ s.upper() }} {{ s.lower() }} {{ 'hello world'.title() }} {{ 'hello World'.capitalize() }} {{ s.replace('o', '0') }} {{ s.replace('o', '0', 1) }} {{ s.find('o') }} {{ s.find('zz') }} {{ s.count('l') }}", **DATA),
    case("method_join_format", "{{ ', '.join(words) }} {{ '-'.join(['x', 'y']) }} {{ 'ab'.isdigit() }} {{ '12'.isdigit() }} {{ ' '.isspace() }} {{ 'Ab'.isalpha() }}", **DATA),
    case("method_splitlines", "{{ 'a\\nb\\r\\nc\\n'.splitlines() }} {{ ''.splitlines() }}"),
    case("method_dict", "{% for k, v in d.items() %}{{ k }}:{{ v }} {% endfor %}{{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('q') }} {{ d.get('q', 'dflt') }}", **DATA),
    # control flow
    case("if_elif_else", "{% for v in [0, 1, 2, 3] %}{% if v == 0 %}zero{% elif v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %} {% endfor %}"),
    case("loop_variables", "{% for x in words %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }};{% endfor %}", **DATA),
    case("loop_over_dict_and_string", "{% for k in d %}{{ k }}{% endfor %} {% for ch in 'h\u00e9\U0001F600' %}[{{ ch }}]{% endfor %}", **DATA),
    case("loop_unpacking", "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}{% for a, b in [(1, 'x')] %}{{ b }}{{ a }}{% endfor %}"),
    case("loop_else", "{% for x in [] %}never{% else %}empty{% endfor %} {% for x in [1] %}one{% else %}never{% endfor %}"),
    case("loop_filter", "{% for x in xs if x > 1 %}{{ x }}:{{ loop.index }}:{{ loop.length }},{% endfor %}", **DATA),
    case("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
    case("nested_loops", "{% for p in people %}{% set outer = loop %}{% for t in p.tags|default([]) %}{{ outer.index }}{{ loop.index }}{{ t }}{% endfor %}{% endfor %}", **DATA),
    case("loop_cycle", "{% for x in xs %}{{ loop.cycle('a', 'b') }}{% endfor %}", **DATA),
    case("range_forms", "{{ range(3)|list }} {{ range(1, 4)|list }} {{ range(10, 0, -3)|list }} {{ range(0)|list }}"),
    # assignment and scoping
    case("set_simple_and_tuple", "{% set a = 1 %}{% set b, c = [2, 3] %}{{ a }}{{ b }}{{ c }}{% set a = a + 10 %}{{ a }}"),
    case("set_in_if_is_visible", "{% if true %}{% set x = 'in' %}{% endif %}{{ x }}"),
    case("set_in_loop_does_not_leak", "{% set x = 'out' %}{% for i in [1, 2] %}{% set x = 'in' ~ i %}{{ x }}{% endfor %}{{ x }}"),
    case("loop_body_reads_outer_variable", "{% set prefix = '>' %}{% for i in [1, 2] %}{{ prefix }}{{ i }}{% endfor %}"),
    case("namespace_carries_across_loop", "{% set ns = namespace(count=0, last=none) %}{% for x in xs %}{% set ns.count = ns.count + x %}{% set ns.last = x %}{% endfor %}{{ ns.count }} {{ ns.last }} {{ ns.missing is defined }}", **DATA),
    case("set_block", "{% set block %}a {{ n }}\n  b{% endset %}[{{ block }}] {{ block|length }}", **DATA),
    case("macro_basic", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(punct='.', name='Cy') }} {{ greet('x')|length }}"),
    case("macro_sees_template_variables", "{% set sep = ' | ' %}{% macro render(items) %}{% for i in items %}{{ i }}{% if not loop.last %}{{ sep }}{% endif %}{% endfor %}{% endmacro %}{{ render(words) }}", **DATA),
    case("macro_recursive", "{% macro walk(v) %}{% if v is mapping %}{% for k, x in v.items() %}{{ k }}({{ walk(x) }}){% endfor %}{% elif v is iterable and v is not string %}{% for x in v %}[{{ walk(x) }}]{% endfor %}{% else %}{{ v }}{% endif %}{% endmacro %}{{ walk(nested) }}", **DATA),
    case("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"),
    case("generation_block", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}", messages=MSGS),
    case("dict_builtin_and_literal_keys", "{{ dict(a=1, b='x') }} {{ {'a': 1, 2: 'two', 'a': 3} }}"),
    case("variable_named_like_keyword", "{% set items = [1, 2] %}{{ items }} {% set loop_messages = messages %}{{ loop_messages|length }}", messages=MSGS),
    case("chat_like", "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content|trim }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}", messages=MSGS, bos_token="<s>", add_generation_prompt=True),
    # errors: Jinja raises, so must iol
    case("error_raise_exception", "{{ raise_exception('roles must alternate') }}"),
    case("error_attribute_of_undefined", "{{ missing.attr }}"),
    case("error_string_plus_int", "{{ 'a' + 1 }}"),
    case("error_unclosed_if", "{% if true %}open"),
    case("error_unknown_tag", "{% frobnicate %}"),
    case("error_unclosed_expression", "{{ 1 + }}"),
    case("error_divide_by_zero", "{{ 1 / 0 }}"),
    case("error_unknown_filter", "{{ 1|no_such_filter }}"),
    case("error_call_non_callable", "{{ s() }}", **DATA),
    case("error_immutable_list", "{{ xs.append(4) }}", **DATA),
    case("error_set_attribute_on_dict", "{% set d.a = 5 %}{{ d.a }}", **DATA),
    case("error_endfor_without_for", "{% endfor %}"),
]

# ---------------------------------------------------------------------------------------------
# Conversations for the real tokenizers' templates.
# ---------------------------------------------------------------------------------------------
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city. \u00c9t\u00e9 \u2600\ufe0f",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}, "threshold": {"type": "number", "default": 0.5}},
        "required": ["city"]}}}
SEARCH_TOOL = {"type": "function", "function": {"name": "search", "description": "Web search",
                                                "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                                                               "required": ["q"]}}}
CALL_WEATHER = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}
CALL_SEARCH_STR = {"type": "function", "function": {"name": "search", "arguments": "{\"q\": \"caf\u00e9 near me\"}"}}


def conv(name, messages, add_generation_prompt=True, tools=None, **kwargs):
    c = {"name": name, "messages": messages, "add_generation_prompt": add_generation_prompt}
    if tools is not None:
        c["tools"] = tools
    if kwargs:
        c["kwargs"] = kwargs
    return c


SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "What is the capital of France?"}
A1 = {"role": "assistant", "content": "Paris."}
U2 = {"role": "user", "content": "And of Japan?"}

CONVERSATIONS = [
    conv("single_user", [U1]),
    conv("single_user_no_generation_prompt", [U1], add_generation_prompt=False),
    conv("system_user", [SYS, U1]),
    conv("multi_turn", [SYS, U1, A1, U2]),
    conv("multi_turn_no_system", [U1, A1, U2]),
    conv("ends_with_assistant", [U1, A1], add_generation_prompt=False),
    conv("continue_final_message", [U1, {"role": "assistant", "content": "The capital is"}],
         add_generation_prompt=False, continue_final_message=True),
    conv("whitespace_content", [{"role": "system", "content": "  \n sys with spaces \n\n"},
                                {"role": "user", "content": "\n\tline one\n  line two  \n"}]),
    conv("unicode_content", [{"role": "user", "content": "\u00bfQu\u00e9 tal? \u65e5\u672c\u8a9e \U0001F468\u200D\U0001F469\u200D\U0001F467 \u0645\u0631\u062d\u0628\u0627"}]),
    conv("empty_content", [{"role": "user", "content": ""}]),
    conv("quotes_braces_and_special_text", [{"role": "user", "content": "Use {{braces}}, {% tags %}, 'quotes' \"and\" <|im_end|> <|eot_id|> </s> [INST]"}]),
    conv("long_multiline_code", [{"role": "user", "content": "Fix this:\n```python\ndef f(x):\n    return x*2\n```\n"},
                                 {"role": "assistant", "content": "```python\ndef f(x):\n    return 2 * x\n```"},
                                 {"role": "user", "content": "Thanks!"}]),
    conv("assistant_with_think_tags", [U1, {"role": "assistant", "content": "<think>\nThe user asks about France.\n</think>\n\nParis."}, U2]),
    conv("assistant_with_think_last", [U1, {"role": "assistant", "content": "<think>\nshort\n</think>\n\nParis."}],
         add_generation_prompt=False),
    conv("assistant_with_reasoning_content", [U1, {"role": "assistant", "content": "Paris.", "reasoning_content": "Recall geography."}, U2]),
    conv("reasoning_after_last_query", [U1, {"role": "assistant", "content": "Paris.", "reasoning_content": "\nRecall.\n"}],
         add_generation_prompt=False),
    conv("enable_thinking_false", [U1], enable_thinking=False),
    conv("enable_thinking_true", [U1], enable_thinking=True),
    conv("tools_with_system", [SYS, {"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL, SEARCH_TOOL]),
    conv("tools_without_system", [{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL]),
    conv("tool_call_round_trip", [
        SYS, {"role": "user", "content": "Weather in Paris, and search cafes?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL_WEATHER, CALL_SEARCH_STR]},
        {"role": "tool", "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
        {"role": "tool", "content": "3 results"},
        {"role": "assistant", "content": "It is 21.5\u00b0C and clear."},
        {"role": "user", "content": "Thanks"}], tools=[WEATHER_TOOL, SEARCH_TOOL]),
    conv("tool_call_with_text_and_pending_response", [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "cold"}], tools=[WEATHER_TOOL]),
    conv("tool_call_without_function_wrapper", [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome", "unit": "celsius"}}]},
        {"role": "tool", "content": "warm"}, {"role": "assistant", "content": "<think>ok</think>Warm."}],
         add_generation_prompt=False, tools=[WEATHER_TOOL]),
    conv("user_message_that_is_a_tool_response", [
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "<think>\nx\n</think>\n\nreply"},
        {"role": "user", "content": "<tool_response>\ndata\n</tool_response>"}]),
    conv("system_in_the_middle", [U1, A1, {"role": "system", "content": "Switch to French."}, U2]),
    conv("only_system", [SYS]),
]


def jinja_environment():
    """transformers' own compiled-template factory when available, else a local replica of it."""
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
        import transformers
        return (lambda template: _compile_jinja_template(template)), "transformers " + transformers.__version__
    except Exception:
        import jinja2
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise jinja2.exceptions.TemplateError(message)

        def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
            return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

        def strftime_now(fmt):
            return datetime.now().strftime(fmt)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = tojson
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = strftime_now
        # transformers' AssistantTracker extension provides {% generation %}; plain jinja2 lacks it.
        return env.from_string, "jinja2 " + jinja2.__version__ + " (local replica of transformers' environment)"


def render_jinja_cases(out_dir):
    compile_template, renderer = jinja_environment()
    results = []
    for c in JINJA_CASES:
        r = dict(c)
        try:
            r["output"] = compile_template(c["template"]).render(**c["context"])
        except Exception as e:  # the error class is what the C++ test checks: that it raises
            r["error"] = type(e).__name__ + ": " + str(e)
        results.append(r)
    with open(os.path.join(out_dir, "jinja_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"renderer": renderer, "cases": results}, f, ensure_ascii=False, indent=1)
    print("jinja_cases:", renderer, sum("error" in r for r in results), "errors of", len(results))


def render_conversations(tokenizers_dir, out_dir):
    import transformers
    from transformers import AutoTokenizer
    llama2_chat = open(os.path.join(REPO, "chat_templates", "llama-2-chat.jinja"), encoding="utf-8").read()
    for name, tok_name, template in (("llama3", "llama3", None), ("llama2", "llama2", None), ("qwen3", "qwen3", None),
                                     ("llama2-chat", "llama2", llama2_chat)):
        tok = AutoTokenizer.from_pretrained(os.path.join(tokenizers_dir, tok_name))
        record = {"tokenizer": tok_name, "transformers": transformers.__version__,
                  "chat_template_file": "chat_templates/llama-2-chat.jinja" if template else None, "cases": []}
        for c in CONVERSATIONS:
            r = dict(c)
            kwargs = dict(c.get("kwargs", {}))
            continue_final = kwargs.pop("continue_final_message", False)
            try:
                text = tok.apply_chat_template(c["messages"], tools=c.get("tools"), chat_template=template,
                                               add_generation_prompt=c["add_generation_prompt"],
                                               continue_final_message=continue_final, tokenize=False, **kwargs)
                r["text"] = text
                r["ids"] = tok.encode(text, add_special_tokens=False)
            except Exception as e:
                r["error"] = type(e).__name__ + ": " + str(e)
            record["cases"].append(r)
        with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, indent=1)
        print(name, sum("error" in r for r in record["cases"]), "errors of", len(record["cases"]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizers", help="directory with llama3/, llama2/, qwen3/ tokenizer files")
    parser.add_argument("--out", required=True)
    parser.add_argument("--jinja-only", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    render_jinja_cases(args.out)
    if not args.jinja_only:
        if not args.tokenizers:
            sys.exit("--tokenizers DIR is required unless --jinja-only")
        render_conversations(args.tokenizers, args.out)


if __name__ == "__main__":
    main()
