// simdjson_parse.cpp — the practical limit for the decoder: simdjson's
// On-Demand parser over the same JSON-lines events, touching every field
// and reading every value as its type (strings, integers, doubles,
// booleans). Compare with `cep-bench --parse-only` on the same file.
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: simdjson-parse EVENTS.jsonl [repeat]\n");
        return 2;
    }
    int repeat = argc > 2 ? std::atoi(argv[2]) : 3;
    simdjson::padded_string data;
    if (simdjson::padded_string::load(argv[1]).get(data)) {
        std::fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    std::vector<std::pair<size_t, size_t>> lines;
    const char *p = data.data();
    size_t n = data.size();
    for (size_t i = 0; i < n;) {
        const char *nl = static_cast<const char *>(std::memchr(p + i, '\n', n - i));
        size_t e = nl ? size_t(nl - p) : n;
        if (e > i) lines.emplace_back(i, e - i);
        i = e + 1;
    }
    // each line needs SIMDJSON_PADDING readable bytes after it: the padded file buffer has them
    simdjson::ondemand::parser parser;
    double best = 1e30;
    uint64_t checksum = 0, errors = 0;
    for (int r = 0; r < repeat; r++) {
        checksum = 0, errors = 0;
        auto t0 = std::chrono::steady_clock::now();
        for (auto &l : lines) {
            simdjson::ondemand::document doc;
            if (parser.iterate(p + l.first, l.second, n + simdjson::SIMDJSON_PADDING - l.first).get(doc)) {
                errors++;
                continue;
            }
            simdjson::ondemand::object obj;
            if (doc.get_object().get(obj)) {
                errors++;
                continue;
            }
            for (auto field : obj) {
                std::string_view key;
                if (field.unescaped_key().get(key)) {
                    errors++;
                    break;
                }
                simdjson::ondemand::value v = field.value();
                simdjson::ondemand::json_type t;
                if (v.type().get(t)) {
                    errors++;
                    break;
                }
                switch (t) {
                case simdjson::ondemand::json_type::string: {
                    std::string_view s;
                    if (!v.get_string().get(s)) checksum += s.size();
                    break;
                }
                case simdjson::ondemand::json_type::number: {
                    simdjson::ondemand::number_type nt;
                    if (v.get_number_type().get(nt)) break;
                    if (nt == simdjson::ondemand::number_type::floating_point_number) {
                        double d;
                        if (!v.get_double().get(d)) checksum += uint64_t(d);
                    } else {
                        int64_t x;
                        if (!v.get_int64().get(x)) checksum += uint64_t(x);
                    }
                    break;
                }
                case simdjson::ondemand::json_type::boolean: {
                    bool b;
                    if (!v.get_bool().get(b)) checksum += b;
                    break;
                }
                default: break;
                }
            }
        }
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (sec < best) best = sec;
    }
    std::printf("simdjson on-demand, every field: %zu events, %.1f MB, best of %d: %.3f s, %.0f events/s, "
                "%.0f ns/event, %.0f MB/s, %llu errors (checksum %llu)\n",
                lines.size(), double(n) / 1e6, repeat, best, double(lines.size()) / best,
                best * 1e9 / double(lines.size()), double(n) / 1e6 / best, (unsigned long long)errors,
                (unsigned long long)checksum);
    return 0;
}
