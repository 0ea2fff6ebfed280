/*
 * peercred: the kernel's word on who is at the other end of a Unix domain socket.
 *
 * Exports
 *   getPeerCredentials(fd: number) -> { pid, uid, gid }   pid is -1 where the kernel does not say
 *   support -> { supported: boolean, mechanism: string, pid: boolean, platform: string }
 *   notify(socketPath: string, state: string) -> true     sd_notify(3): one datagram to NOTIFY_SOCKET
 *   notifyListen(socketPath) -> fd, notifyReceive(fd) -> string | null, notifyClose(fd)
 *                                                         the receiving side of that protocol
 *
 * The credentials are those the kernel recorded when the connection was made (connect(2) on the
 * client, listen(2) on the server side as seen by the client), not whatever the peer claims, so a
 * process cannot lie about them. Errors carry `code` (the errno name, e.g. 'EBADF'), `errno` and
 * `syscall`, like Node's own system errors.
 *
 * Only node_api.h is used, so one binary works across Node versions (N-API is ABI stable).
 */

#if defined(__linux__)
/* unix(7): struct ucred is only declared with _GNU_SOURCE. */
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <node_api.h>

#if defined(__linux__)
#define PEERCRED_SUPPORTED 1
#define PEERCRED_MECHANISM "SO_PEERCRED"
#define PEERCRED_HAS_PID 1
#include <sys/socket.h>
#include <sys/types.h>
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || \
    defined(__DragonFly__)
#define PEERCRED_SUPPORTED 1
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__APPLE__) && defined(LOCAL_PEERPID)
#define PEERCRED_MECHANISM "getpeereid+LOCAL_PEERPID"
#define PEERCRED_HAS_PID 1
#else
#define PEERCRED_MECHANISM "getpeereid"
#define PEERCRED_HAS_PID 0
#endif
#else
#define PEERCRED_SUPPORTED 0
#define PEERCRED_MECHANISM "none"
#define PEERCRED_HAS_PID 0
#endif

#if defined(__linux__)
#define PEERCRED_PLATFORM "linux"
#elif defined(__APPLE__)
#define PEERCRED_PLATFORM "darwin"
#elif defined(__FreeBSD__)
#define PEERCRED_PLATFORM "freebsd"
#elif defined(__OpenBSD__)
#define PEERCRED_PLATFORM "openbsd"
#elif defined(__NetBSD__)
#define PEERCRED_PLATFORM "netbsd"
#elif defined(__DragonFly__)
#define PEERCRED_PLATFORM "dragonfly"
#else
#define PEERCRED_PLATFORM "unknown"
#endif

/* Bail out of a napi_value function when an N-API call fails; a pending exception is kept. */
#define NAPI_CALL(env, call)                                                                      \
  do {                                                                                            \
    if ((call) != napi_ok) {                                                                      \
      bool pending_ = false;                                                                      \
      napi_is_exception_pending((env), &pending_);                                                \
      if (!pending_) napi_throw_error((env), "EFAULT", "peercred: N-API call failed: " #call);    \
      return NULL;                                                                                \
    }                                                                                             \
  } while (0)

/* The errno names a socket getsockopt/getpeereid can report; Node's system errors use the same. */
static const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOTCONN: return "ENOTCONN";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
    case ENOTSUP: return "ENOTSUP";
#endif
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EADDRINUSE: return "EADDRINUSE";
    case EMSGSIZE: return "EMSGSIZE";
    case EAGAIN: return "EAGAIN";
    case EMFILE: return "EMFILE";
    case ENOTDIR: return "ENOTDIR";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error with message "<syscall> <CODE>: <detail>" and code/errno/syscall properties. */
static void throw_system_error(napi_env env, const char *code, int err, const char *syscall,
                               const char *detail) {
  char message[256];
  napi_value js_code, js_message, error, value;

  snprintf(message, sizeof message, "%s %s: %s", syscall, code, detail);
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &js_message) != napi_ok ||
      napi_create_error(env, js_code, js_message, &error) != napi_ok) {
    napi_throw_error(env, code, message);
    return;
  }
  /* Node's system errors carry a negative errno (uv convention); keep that shape. */
  if (err != 0 && napi_create_int32(env, -err, &value) == napi_ok) {
    napi_set_named_property(env, error, "errno", value);
  }
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", value);
  }
  napi_throw(env, error);
}

static void throw_errno(napi_env env, int err, const char *syscall) {
  throw_system_error(env, errno_name(err), err, syscall, strerror(err));
}

static napi_value make_credentials(napi_env env, double pid, double uid, double gid) {
  napi_value result, value;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_double(env, pid, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "pid", value));
  NAPI_CALL(env, napi_create_double(env, uid, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "uid", value));
  NAPI_CALL(env, napi_create_double(env, gid, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "gid", value));
  return result;
}

/* The one fd argument of NAME(fd): a number, or a TypeError naming the function. */
static int required_fd(napi_env env, napi_callback_info info, const char *fn, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  char message[96];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < 1) {
    snprintf(message, sizeof message, "%s(fd): fd is required", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return -1;
  }
  if (napi_typeof(env, argv[0], &type) != napi_ok) return -1;
  if (type != napi_number) {
    snprintf(message, sizeof message, "%s(fd): fd must be a number", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return -1;
  }
  return napi_get_value_int32(env, argv[0], fd) == napi_ok ? 0 : -1;
}

#if defined(__linux__)
static napi_value peer_credentials(napi_env env, int32_t fd) {
  /* unix(7) SO_PEERCRED: the credentials of the peer process at connect(2)/socketpair(2) time. */
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw_errno(env, errno, "getsockopt");
    return NULL;
  }
  /* The kernel fills uid/gid with (uid_t)-1 when the socket has no peer credentials at all:
   * a TCP socket, or a Unix socket that is not connected. Do not hand back 4294967295 as if
   * it were a uid. */
  if (cred.uid == (uid_t)-1 && cred.gid == (gid_t)-1) {
    throw_system_error(env, "ENOTCONN", ENOTCONN, "getsockopt",
                       "socket carries no peer credentials (not a connected Unix domain socket)");
    return NULL;
  }
  /* pid is 0 when the peer lives in a pid namespace this process cannot see (pid_vnr()): the
   * pid is unknown here, not 0. */
  return make_credentials(env, cred.pid > 0 ? (double)cred.pid : -1, (double)cred.uid,
                          (double)cred.gid);
}
#elif PEERCRED_SUPPORTED
static napi_value peer_credentials(napi_env env, int32_t fd) {
  /* getpeereid(3): the effective uid/gid of the peer at connect(2)/listen(2) time. */
  uid_t uid;
  gid_t gid;
  double pid = -1;
  if (getpeereid(fd, &uid, &gid) != 0) {
    throw_errno(env, errno, "getpeereid");
    return NULL;
  }
#if defined(__APPLE__) && defined(LOCAL_PEERPID)
  {
    /* macOS <sys/un.h>: LOCAL_PEERPID at level SOL_LOCAL gives the peer's pid. Best effort:
     * uid/gid above are what the check relies on, so a failure here leaves pid unknown. */
    pid_t peer_pid = -1;
    socklen_t len = sizeof peer_pid;
    if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &peer_pid, &len) == 0 && peer_pid > 0) {
      pid = (double)peer_pid;
    }
  }
#endif
  return make_credentials(env, pid, (double)uid, (double)gid);
}
#else
static napi_value peer_credentials(napi_env env, int32_t fd) {
  (void)fd;
  throw_system_error(env, "ENOTSUP", 0, "getPeerCredentials",
                     "peer credentials are unsupported on this platform (" PEERCRED_PLATFORM ")");
  return NULL;
}
#endif

static napi_value GetPeerCredentials(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (required_fd(env, info, "getPeerCredentials", &fd) != 0) return NULL;
  return peer_credentials(env, fd);
}

static napi_value make_support(napi_env env) {
  napi_value result, value;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_get_boolean(env, PEERCRED_SUPPORTED, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "supported", value));
  NAPI_CALL(env, napi_create_string_utf8(env, PEERCRED_MECHANISM, NAPI_AUTO_LENGTH, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "mechanism", value));
  NAPI_CALL(env, napi_get_boolean(env, PEERCRED_HAS_PID, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "pid", value));
  NAPI_CALL(env, napi_create_string_utf8(env, PEERCRED_PLATFORM, NAPI_AUTO_LENGTH, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "platform", value));
  NAPI_CALL(env, napi_object_freeze(env, result));
  return result;
}

static napi_status register_flock(napi_env env, napi_value exports);
/* ---- sd_notify(3): readiness and status for systemd, without libsystemd ----
 *
 * The protocol is one datagram per message on an AF_UNIX SOCK_DGRAM socket named by NOTIFY_SOCKET:
 * an absolute path, or a Linux abstract name written with a leading '@' (the '@' stands for the
 * NUL byte that starts an abstract address, and the address length counts no trailing NUL).
 * The kernel attaches our pid/uid/gid to the datagram, which is how systemd tells who sent it.
 */

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#if !defined(MSG_NOSIGNAL)
#define MSG_NOSIGNAL 0
#endif

/* Reads a string argument into a malloc'd buffer (NUL terminated); NULL with an exception pending. */
static char *string_arg(napi_env env, napi_value value, const char *what, size_t *out_len) {
  napi_valuetype type;
  size_t len = 0;
  char *buf;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_string) {
    char message[128];
    snprintf(message, sizeof message, "%s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return NULL;
  }
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  buf = malloc(len + 1);
  if (buf == NULL) {
    throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, value, buf, len + 1, &len) != napi_ok) {
    free(buf);
    return NULL;
  }
  if (out_len) *out_len = len;
  return buf;
}

/* Fills a sockaddr_un from "/path" or "@abstract"; 0, or -1 with an exception thrown. */
static int notify_address(napi_env env, const char *name, struct sockaddr_un *addr, socklen_t *addr_len) {
  size_t len = strlen(name);
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (name[0] == '@') {
#if defined(__linux__)
    if (len - 1 > sizeof addr->sun_path - 1 || len < 2) {
      throw_system_error(env, "ENAMETOOLONG", ENAMETOOLONG, "sd_notify", "abstract socket name is empty or longer than 107 bytes");
      return -1;
    }
    addr->sun_path[0] = '\0';
    memcpy(addr->sun_path + 1, name + 1, len - 1);
    *addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    return 0;
#else
    throw_system_error(env, "EAFNOSUPPORT", EAFNOSUPPORT, "sd_notify", "abstract socket names exist only on Linux");
    return -1;
#endif
  }
  if (name[0] != '/') {
    throw_system_error(env, "EINVAL", EINVAL, "sd_notify", "the socket must be an absolute path or an abstract name starting with '@'");
    return -1;
  }
  if (len > sizeof addr->sun_path - 1) {
    throw_system_error(env, "ENAMETOOLONG", ENAMETOOLONG, "sd_notify", "socket path is longer than 107 bytes");
    return -1;
  }
  memcpy(addr->sun_path, name, len);
  *addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  return 0;
}

static int datagram_socket(void) {
#if defined(SOCK_CLOEXEC)
  return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
#else
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#endif
}

static napi_value Notify(napi_env env, napi_callback_info info) {
  size_t argc = 2, state_len = 0;
  napi_value argv[2], result;
  struct sockaddr_un addr;
  socklen_t addr_len;
  char *name, *state;
  ssize_t sent;
  int fd, err;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "notify(socketPath, state): both are required");
    return NULL;
  }
  name = string_arg(env, argv[0], "notify(socketPath, state): socketPath", NULL);
  if (name == NULL) return NULL;
  if (notify_address(env, name, &addr, &addr_len) != 0) {
    free(name);
    return NULL;
  }
  free(name);
  state = string_arg(env, argv[1], "notify(socketPath, state): state", &state_len);
  if (state == NULL) return NULL;
  fd = datagram_socket();
  if (fd < 0) {
    err = errno;
    free(state);
    throw_errno(env, err, "socket");
    return NULL;
  }
  sent = sendto(fd, state, state_len, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
  err = errno;
  close(fd);
  free(state);
  if (sent < 0) {
    throw_errno(env, err, "sendto");
    return NULL;
  }
  NAPI_CALL(env, napi_get_boolean(env, true, &result));
  return result;
}

/* Binds a non-blocking datagram socket at "/path" or "@abstract" and returns its fd. */
static napi_value NotifyListen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  struct sockaddr_un addr;
  socklen_t addr_len;
  char *name;
  int fd, err;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "notifyListen(socketPath): socketPath is required");
    return NULL;
  }
  name = string_arg(env, argv[0], "notifyListen(socketPath): socketPath", NULL);
  if (name == NULL) return NULL;
  if (notify_address(env, name, &addr, &addr_len) != 0) {
    free(name);
    return NULL;
  }
  free(name);
  fd = datagram_socket();
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  if (bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    err = errno;
    close(fd);
    throw_errno(env, err, "bind");
    return NULL;
  }
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
}

static int fd_arg(napi_env env, napi_callback_info info, const char *what, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return -1;
  }
  return 0;
}

/* One pending datagram as a string, or null when none is waiting (never blocks). */
static napi_value NotifyReceive(napi_env env, napi_callback_info info) {
  char buf[4096];
  napi_value result;
  ssize_t got;
  int32_t fd;
  if (fd_arg(env, info, "notifyReceive(fd): fd must be a descriptor from notifyListen", &fd) != 0) return NULL;
  got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      NAPI_CALL(env, napi_get_null(env, &result));
      return result;
    }
    throw_errno(env, errno, "recv");
    return NULL;
  }
  NAPI_CALL(env, napi_create_string_utf8(env, buf, (size_t)got, &result));
  return result;
}

static napi_value NotifyClose(napi_env env, napi_callback_info info) {
  napi_value result;
  int32_t fd;
  if (fd_arg(env, info, "notifyClose(fd): fd must be a descriptor from notifyListen", &fd) != 0) return NULL;
  if (close(fd) != 0) {
    throw_errno(env, errno, "close");
    return NULL;
  }
  NAPI_CALL(env, napi_get_undefined(env, &result));
  return result;
}

static napi_value export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  NAPI_CALL(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, name, fn));
  return exports;
}
static napi_value register_inspect_socket(napi_env env, napi_value exports);
static napi_value register_pidfd(napi_env env, napi_value exports);

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn, support;
  NAPI_CALL(env, napi_create_function(env, "getPeerCredentials", NAPI_AUTO_LENGTH, GetPeerCredentials,
                                      NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "getPeerCredentials", fn));
  support = make_support(env);
  if (support == NULL) return NULL;
  NAPI_CALL(env, napi_set_named_property(env, exports, "support", support));
  if (register_flock(env, exports) != napi_ok) return NULL;
  if (export_function(env, exports, "notify", Notify) == NULL ||
      export_function(env, exports, "notifyListen", NotifyListen) == NULL ||
      export_function(env, exports, "notifyReceive", NotifyReceive) == NULL ||
      export_function(env, exports, "notifyClose", NotifyClose) == NULL) {
    return NULL;
  }
  if (register_inspect_socket(env, exports) == NULL) return NULL;
  if (register_pidfd(env, exports) == NULL) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)

/*
 * flock(fd, exclusive, nonblocking) -> boolean
 *
 * flock(2) on a file descriptor Node opened: the socket lock of naaccord-ipc. The kernel drops the
 * lock when the last descriptor of that open file is closed, so a holder that dies (SIGKILL too;
 * a zombie's descriptors are closed once its last thread has exited) never leaves a lock behind:
 * no stale period. Returns true when the lock was taken, false when it is
 * held by another open file and nonblocking was asked (EWOULDBLOCK). Other failures throw with
 * `code`/`errno`/`syscall` like Node's system errors. Never call it blocking from the main thread.
 */
#include <sys/file.h>

static const char *flock_errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOLCK: return "ENOLCK";
    case EINTR: return "EINTR";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EUNKNOWN";
  }
}

static napi_value Flock(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_valuetype type;
  int32_t fd;
  bool exclusive = true, nonblocking = true;
  int op, rc;
  napi_value result;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "flock(fd, exclusive, nonblocking): 3 arguments required");
    return NULL;
  }
  NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "flock(fd, exclusive, nonblocking): fd must be a number");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &exclusive));
  NAPI_CALL(env, napi_get_value_bool(env, argv[2], &nonblocking));

  op = (exclusive ? LOCK_EX : LOCK_SH) | (nonblocking ? LOCK_NB : 0);
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EWOULDBLOCK && nonblocking) {
      NAPI_CALL(env, napi_get_boolean(env, false, &result));
      return result;
    }
    throw_system_error(env, flock_errno_name(errno), errno, "flock", strerror(errno));
    return NULL;
  }
  NAPI_CALL(env, napi_get_boolean(env, true, &result));
  return result;
}

static napi_status register_flock(napi_env env, napi_value exports) {
  napi_value fn;
  napi_status status = napi_create_function(env, "flock", NAPI_AUTO_LENGTH, Flock, NULL, &fn);
  if (status != napi_ok) return status;
  return napi_set_named_property(env, exports, "flock", fn);
}

/*
 * inspectSocket(fd) -> { family: 'unix' | 'inet' | 'inet6' | 'other', type: 'stream' | 'dgram' |
 *   'seqpacket' | 'other', listening: boolean | undefined, path: string | undefined,
 *   file: { dev: number, ino: number } | undefined }
 *
 * What an inherited descriptor (systemd socket activation, LISTEN_FDS) really is, before serve()
 * adopts it: getsockname(2) for the family and the bound path, SO_TYPE for the type, and
 * SO_ACCEPTCONN (where the platform has it) for whether listen(2) was called. Errors carry `code`
 * like the function above (EBADF for a closed fd, ENOTSOCK for a file).
 *
 * `file` (Linux): the device and inode of the file the socket is bound to, as the kernel keeps it
 * (sock_diag(7), UNIX_DIAG_VFS), so the caller can tell whether the file at a path is this very
 * socket: getsockname only gives the path as it was written at bind(2), and fstat(2) on the
 * descriptor gives the socket's sockfs inode, not the file's. `dev` is in stat(2)'s st_dev
 * encoding; `ino` is the low 32 bits of st_ino (the kernel reports 32). Undefined where the kernel
 * does not say (no unix_diag, a sandbox refusing NETLINK_SOCK_DIAG, an unnamed socket).
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <stddef.h>
#if defined(__linux__)
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

/*
 * Ask sock_diag for the bound file of the Unix socket whose sockfs inode is `sock_ino`. Returns 0
 * and fills dev/ino when the kernel answered with UNIX_DIAG_VFS; -1 otherwise (never throws: the
 * caller then has no inode to compare, and says so).
 */
static int unix_bound_file(unsigned long sock_ino, double *dev, double *ino) {
  struct {
    struct nlmsghdr nlh;
    struct unix_diag_req req;
  } request;
  union {
    struct nlmsghdr nlh;
    char buf[8192];
  } reply;
  struct sockaddr_nl kernel;
  int found = -1;
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  memset(&request, 0, sizeof request);
  request.nlh.nlmsg_len = sizeof request;
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  request.nlh.nlmsg_seq = 1;
  request.req.sdiag_family = AF_UNIX;
  request.req.udiag_states = (__u32)-1;
  request.req.udiag_ino = (__u32)sock_ino;
  request.req.udiag_show = UDIAG_SHOW_VFS;
  request.req.udiag_cookie[0] = (__u32)-1; /* INET_DIAG_NOCOOKIE: look up by inode alone */
  request.req.udiag_cookie[1] = (__u32)-1;
  if (sendto(nl, &request, sizeof request, 0, (struct sockaddr *)&kernel, sizeof kernel) == (ssize_t)sizeof request) {
    /* The kernel answers within sendto (sock_diag runs in the sender's context): never wait. */
    ssize_t n = recv(nl, &reply, sizeof reply, MSG_DONTWAIT);
    struct nlmsghdr *h = &reply.nlh;
    for (; n > 0 && NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      struct unix_diag_msg *msg;
      struct rtattr *attr;
      int left;
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) break; /* NLMSG_ERROR (ENOENT: no unix_diag) or DONE */
      msg = (struct unix_diag_msg *)NLMSG_DATA(h);
      if (msg->udiag_ino != (__u32)sock_ino) continue;
      attr = (struct rtattr *)(msg + 1);
      left = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *msg));
      for (; RTA_OK(attr, left); attr = RTA_NEXT(attr, left)) {
        if (attr->rta_type == UNIX_DIAG_VFS && RTA_PAYLOAD(attr) >= sizeof(struct unix_diag_vfs)) {
          const struct unix_diag_vfs *vfs = (const struct unix_diag_vfs *)RTA_DATA(attr);
          /* The kernel's own dev_t: 12-bit major above a 20-bit minor (MINORBITS). */
          unsigned int major = vfs->udiag_vfs_dev >> 20, minor = vfs->udiag_vfs_dev & 0xfffff;
          *dev = (double)makedev(major, minor);
          *ino = (double)vfs->udiag_vfs_ino;
          found = 0;
        }
      }
      break;
    }
  }
  close(nl);
  return found;
}
#endif

static const char *family_name_of(int family) {
  if (family == AF_UNIX) return "unix";
  if (family == AF_INET) return "inet";
  if (family == AF_INET6) return "inet6";
  return "other";
}

static const char *type_name_of(int type) {
  if (type == SOCK_STREAM) return "stream";
  if (type == SOCK_DGRAM) return "dgram";
  if (type == SOCK_SEQPACKET) return "seqpacket";
  return "other";
}

static napi_status set_string(napi_env env, napi_value object, const char *key, const char *text, size_t len) {
  napi_value value;
  napi_status status = napi_create_string_utf8(env, text, len, &value);
  return status == napi_ok ? napi_set_named_property(env, object, key, value) : status;
}

/* listening: SO_ACCEPTCONN, or undefined where the platform has no such option. */
static napi_status set_listening(napi_env env, napi_value result, int32_t fd) {
  napi_value value;
  napi_status status;
#if defined(SO_ACCEPTCONN)
  int accepting = 0;
  socklen_t alen = sizeof accepting;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &alen) != 0) {
    throw_errno(env, errno, "getsockopt");
    return napi_pending_exception;
  }
  status = napi_get_boolean(env, accepting != 0, &value);
#else
  (void)fd;
  status = napi_get_undefined(env, &value);
#endif
  return status == napi_ok ? napi_set_named_property(env, result, "listening", value) : status;
}

/* path: the bound path of a Unix socket; undefined when unnamed, abstract (leading NUL) or not Unix. */
static napi_status set_unix_path(napi_env env, napi_value result, const struct sockaddr_storage *addr, socklen_t addrlen) {
  napi_value value;
  if (addr->ss_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
    size_t offset = offsetof(struct sockaddr_un, sun_path);
    size_t n = addrlen > offset ? (size_t)addrlen - offset : 0;
    /* A path: NUL-terminated within n bytes, or exactly n bytes long. */
    if (n > 0 && un->sun_path[0] != '\0') return set_string(env, result, "path", un->sun_path, strnlen(un->sun_path, n));
  }
  napi_status status = napi_get_undefined(env, &value);
  return status == napi_ok ? napi_set_named_property(env, result, "path", value) : status;
}

/* file: { dev, ino } of the file a Unix socket is bound to (sock_diag, Linux), else undefined. */
static napi_status set_bound_file(napi_env env, napi_value result, int32_t fd, int family) {
  napi_value value;
  napi_status status = napi_get_undefined(env, &value);
  if (status != napi_ok) return status;
#if defined(__linux__)
  struct stat st;
  double dev = 0, ino = 0;
  if (family == AF_UNIX && fstat(fd, &st) == 0 && unix_bound_file((unsigned long)st.st_ino, &dev, &ino) == 0) {
    napi_value number;
    if ((status = napi_create_object(env, &value)) != napi_ok) return status;
    if ((status = napi_create_double(env, dev, &number)) != napi_ok) return status;
    if ((status = napi_set_named_property(env, value, "dev", number)) != napi_ok) return status;
    if ((status = napi_create_double(env, ino, &number)) != napi_ok) return status;
    if ((status = napi_set_named_property(env, value, "ino", number)) != napi_ok) return status;
  }
#else
  (void)fd;
  (void)family;
#endif
  return napi_set_named_property(env, result, "file", value);
}

static napi_value InspectSocket(napi_env env, napi_callback_info info) {
  napi_value result;
  int32_t fd;
  struct sockaddr_storage addr;
  socklen_t addrlen = sizeof addr;
  int type = 0;
  socklen_t len = sizeof type;

  if (required_fd(env, info, "inspectSocket", &fd) != 0) return NULL;
  memset(&addr, 0, sizeof addr);
  if (getsockname(fd, (struct sockaddr *)&addr, &addrlen) != 0) {
    throw_errno(env, errno, "getsockname");
    return NULL;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    throw_errno(env, errno, "getsockopt");
    return NULL;
  }
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, set_string(env, result, "family", family_name_of(addr.ss_family), NAPI_AUTO_LENGTH));
  NAPI_CALL(env, set_string(env, result, "type", type_name_of(type), NAPI_AUTO_LENGTH));
  NAPI_CALL(env, set_listening(env, result, fd));
  NAPI_CALL(env, set_unix_path(env, result, &addr, addrlen));
  NAPI_CALL(env, set_bound_file(env, result, fd, addr.ss_family));
  return result;
}

/*
 * dupCloexec(fd) -> number: fcntl(F_DUPFD_CLOEXEC) from 3 up. The supervisor keeps its own copy
 * of the listening socket outside Node's event loop (so it never accepts on it itself), closed
 * on exec for every process it starts except where it passes it on explicitly as fd 3.
 */
#include <fcntl.h>

static napi_value DupCloexec(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  int copy;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "dupCloexec(fd): fd must be a number");
    return NULL;
  }
  copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) {
    throw_errno(env, errno, "fcntl");
    return NULL;
  }
  NAPI_CALL(env, napi_create_int32(env, copy, &result));
  return result;
}

static napi_value register_inspect_socket(napi_env env, napi_value exports) {
  napi_value fn;
  NAPI_CALL(env, napi_create_function(env, "dupCloexec", NAPI_AUTO_LENGTH, DupCloexec, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "dupCloexec", fn));
  NAPI_CALL(env, napi_create_function(env, "inspectSocket", NAPI_AUTO_LENGTH, InspectSocket, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "inspectSocket", fn));
  return exports;
}


/*
 * The peer as a process handle (Linux 6.5+ SO_PEERPIDFD, pidfd_send_signal(2)).
 *
 *   peerPidfd(fd) -> number | string   a pidfd (close-on-exec) for the process the kernel recorded
 *                                      at connect(2), or the errno name why not: 'ENOPROTOOPT' (the
 *                                      kernel predates SO_PEERPIDFD; 'ENOTSUP' off Linux), 'ESRCH'
 *                                      or 'EINVAL' (that process has already been reaped), ...
 *   pidfdAlive(pidfd) -> boolean       the process still exists (a zombie does: its pid cannot be
 *                                      reused until it is reaped); signal 0, nothing is sent
 *   pidfdProbe() -> boolean            SO_PEERPIDFD works here (a socketpair of our own)
 *
 * sk_peer_pid is fixed at connect(2), so the pidfd names that process whenever it is taken: a pid
 * read through /proc while pidfdAlive is true before and after is that process's, not a reuse.
 * Never throws for the kernel's answers (they are the result); only for bad arguments.
 */
#if defined(__linux__)
#include <sys/syscall.h>
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#endif

#if defined(__linux__)
/* Only the Linux branch of peerPidfd names errnos (the others answer ENOTSUP). */
static const char *pidfd_errno_name(int err) {
  switch (err) {
    case ESRCH: return "ESRCH";
#if defined(ENODATA)
    case ENODATA: return "ENODATA";
#endif
    default: return errno_name(err);
  }
}
#endif

static napi_value PeerPidfd(napi_env env, napi_callback_info info) {
  napi_value result;
  int32_t fd;
  if (fd_arg(env, info, "peerPidfd(fd): fd must be a socket descriptor", &fd) != 0) return NULL;
#if defined(__linux__)
  {
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0 || pidfd < 0) {
      int err = pidfd < 0 && errno == 0 ? ESRCH : errno;
      NAPI_CALL(env, napi_create_string_utf8(env, pidfd_errno_name(err), NAPI_AUTO_LENGTH, &result));
      return result;
    }
    /* The kernel hands pidfds out close-on-exec; make sure of it (a child must not inherit it). */
    (void)fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    NAPI_CALL(env, napi_create_int32(env, pidfd, &result));
    return result;
  }
#else
  (void)fd;
  NAPI_CALL(env, napi_create_string_utf8(env, "ENOTSUP", NAPI_AUTO_LENGTH, &result));
  return result;
#endif
}

static napi_value PidfdAlive(napi_env env, napi_callback_info info) {
  napi_value result;
  int32_t pidfd;
  bool alive = false;
  if (fd_arg(env, info, "pidfdAlive(pidfd): pidfd must be a descriptor from peerPidfd", &pidfd) != 0) return NULL;
#if defined(__linux__)
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0) {
    alive = true;
  } else if (errno == EPERM) {
    alive = true; /* it exists; we may not signal it */
  } else if (errno != ESRCH) {
    throw_errno(env, errno, "pidfd_send_signal");
    return NULL;
  }
#else
  (void)pidfd;
#endif
  NAPI_CALL(env, napi_get_boolean(env, alive, &result));
  return result;
}

static napi_value PidfdProbe(napi_env env, napi_callback_info info) {
  napi_value result;
  bool works = false;
  (void)info;
#if defined(__linux__)
  {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
      int pidfd = -1;
      socklen_t len = sizeof pidfd;
      if (getsockopt(pair[0], SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0) {
        works = syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
        close(pidfd);
      }
      close(pair[0]);
      close(pair[1]);
    }
  }
#endif
  NAPI_CALL(env, napi_get_boolean(env, works, &result));
  return result;
}

static napi_value register_pidfd(napi_env env, napi_value exports) {
  if (export_function(env, exports, "peerPidfd", PeerPidfd) == NULL ||
      export_function(env, exports, "pidfdAlive", PidfdAlive) == NULL ||
      export_function(env, exports, "pidfdProbe", PidfdProbe) == NULL) {
    return NULL;
  }
  return exports;
}
