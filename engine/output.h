/*
 * output.h — the text forms of an output row: its key and value as ksqlDB
 * writes them (per the sink's formats), and the alert line of
 * ../shared/conformance/README.md for files and stdout.
 */
#ifndef CEP_OUTPUT_H
#define CEP_OUTPUT_H

#include "patterns/window.h"

/* JSON text of the record key (null when the sink has no key columns). */
void cep_output_key_json(const cep_output_t *o, cep_buf_t *out);
/* JSON text of the record value: an object (JSON), a string (DELIMITED),
 * a bare primitive (KAFKA or unwrapped), or null for a tombstone. */
void cep_output_value_json(const cep_output_t *o, cep_buf_t *out);
/* The alert's deterministic id (rule/key/window start or event time). */
void cep_output_alert_id(const cep_output_t *o, cep_buf_t *out);
/* One alert line (no trailing newline). */
void cep_output_alert_line(const cep_output_t *o, cep_buf_t *out);
/* One dead-letter line of a file source (no trailing newline): why, where
 * (source, line, byte offset) and the raw record. */
void cep_output_dead_letter_line(const char *source, uint64_t line, const cep_error_t *err, const char *raw, size_t n,
                                 cep_buf_t *out);

#endif
