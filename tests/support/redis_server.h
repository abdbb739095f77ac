/*
 * redis_server.h — a real redis-server for tests: a child process on a free
 * loopback port with its own temporary directory, stopped and restarted on
 * the same port and password to test reconnects, and optionally persistent
 * (append-only file, fsync always) so a restart keeps the data.
 *
 * Tests run in parallel (criterion --jobs 2): every server has its own
 * port and directory, and start checks that the process answering on the
 * port is its own child. The child gets SIGKILL if the test process dies,
 * so a crashed test leaves no server behind.
 */
#ifndef CEP_TESTS_SUPPORT_REDIS_SERVER_H
#define CEP_TESTS_SUPPORT_REDIS_SERVER_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

typedef struct cep_test_redis cep_test_redis_t;

/* Start redis-server (from PATH, else /usr/bin/redis-server) on 127.0.0.1
 * with no persistence and, if password (borrowed) is not NULL, that
 * requirepass; returns once it answers PING. NULL on failure, with the
 * reason and the server's log on stderr. Owned by the caller: free with
 * cep_test_redis_free. */
cep_test_redis_t *cep_test_redis_start(const char *password);
/* The same with --appendonly yes --appendfsync always in the temporary
 * directory: every acknowledged write survives stop + restart. */
cep_test_redis_t *cep_test_redis_start_persistent(const char *password);

/* "redis://127.0.0.1:PORT" or "redis://:PASSWORD@127.0.0.1:PORT" (borrowed,
 * valid until free). */
const char *cep_test_redis_url(const cep_test_redis_t *s);
int cep_test_redis_port(const cep_test_redis_t *s);
/* The temporary directory holding the server's files and log (borrowed). */
const char *cep_test_redis_dir(const cep_test_redis_t *s);

/* SIGTERM and wait (SIGKILL after 10 s); the port and directory are kept
 * for cep_test_redis_restart. Stopping a stopped server does nothing. */
void cep_test_redis_stop(cep_test_redis_t *s);
/* Start again on the same port with the same password and mode (stopping
 * first if running); false if it does not answer within 5 s. */
bool cep_test_redis_restart(cep_test_redis_t *s);
/* SIGSTOP / SIGCONT: the server keeps its connections and accepts new
 * ones (the kernel does) but answers nothing — a hung server. */
bool cep_test_redis_pause(cep_test_redis_t *s);
bool cep_test_redis_resume(cep_test_redis_t *s);

/* A plain hiredis connection to the server, authenticated, for checks
 * behind the code under test (KEYS, TYPE, ...). Owned by the caller: free
 * with redisFree. NULL on failure. */
redisContext *cep_test_redis_raw(const cep_test_redis_t *s);

/* A loopback port that nobody listened on a moment ago (to test refused
 * connections), -1 on failure. */
int cep_test_redis_free_port(void);

/* Stop the server and remove its directory. */
void cep_test_redis_free(cep_test_redis_t *s);

#endif
