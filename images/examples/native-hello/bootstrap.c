// A function that is a native executable (runtime "provided"): the W4
// workload of the cold-start benchmark.
//
// Started with AWS_LAMBDA_RUNTIME_API set (thaw, Lambda) it speaks the Runtime
// API: it asks for the next event and answers each one. Started without it (a
// bare process, bubblewrap, an OCI runtime) it prints the same answer once and
// exits, so that every contender does the same work.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static const char kAnswer[] = "{\"message\": \"hello native\"}";

enum { kHeaderMax = 16384 };

static void die(const char* what) {
  perror(what);
  exit(1);
}

// One HTTP/1.1 exchange on a fresh connection to host:port. Returns the
// response's header block (NUL-terminated, in `head`); the body is read and
// dropped, since the answer does not depend on the event.
static void exchange(const char* host, int port, const char* request, size_t request_len,
                     char* head) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("runtime API address");
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) die("connect");
  for (size_t sent = 0; sent < request_len;) {
    ssize_t n = write(fd, request + sent, request_len - sent);
    if (n <= 0) die("write");
    sent += (size_t)n;
  }
  size_t got = 0;
  char* end = NULL;
  while (!end) {
    if (got == kHeaderMax - 1) die("response header too long");
    ssize_t n = read(fd, head + got, kHeaderMax - 1 - got);
    if (n <= 0) die("read");
    got += (size_t)n;
    head[got] = '\0';
    end = strstr(head, "\r\n\r\n");
  }
  size_t body_have = got - (size_t)(end + 4 - head);
  *end = '\0';
  size_t body_len = 0;
  for (char* line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n"))
    if (strncasecmp(line + 2, "Content-Length:", 15) == 0) body_len = strtoul(line + 17, NULL, 10);
  char sink[4096];
  while (body_have < body_len) {
    ssize_t n = read(fd, sink, sizeof sink);
    if (n <= 0) die("read body");
    body_have += (size_t)n;
  }
  close(fd);
}

static void header_value(const char* head, const char* name, char* out, size_t out_size) {
  size_t len = strlen(name);
  out[0] = '\0';
  for (const char* line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, name, len) != 0 || line[2 + len] != ':') continue;
    const char* v = line + 3 + len;
    while (*v == ' ') ++v;
    size_t n = strcspn(v, "\r");
    if (n >= out_size) n = out_size - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return;
  }
}

int main(void) {
  const char* api = getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api) {
    puts(kAnswer);
    return 0;
  }
  char host[64];
  int port = 0;
  if (sscanf(api, "%63[^:]:%d", host, &port) != 2) {
    fprintf(stderr, "AWS_LAMBDA_RUNTIME_API is not host:port: %s\n", api);
    return 1;
  }
  static char head[kHeaderMax];
  char request[1024], id[128];
  for (;;) {
    int n = snprintf(request, sizeof request,
                     "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n"
                     "Connection: close\r\n\r\n",
                     api);
    exchange(host, port, request, (size_t)n, head);
    header_value(head, "Lambda-Runtime-Aws-Request-Id", id, sizeof id);
    if (!id[0]) {
      fprintf(stderr, "no request id in: %s\n", head);
      return 1;
    }
    n = snprintf(request, sizeof request,
                 "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 id, api, strlen(kAnswer), kAnswer);
    exchange(host, port, request, (size_t)n, head);
  }
}
