#include "gateway/cli/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
bg_notify(const char *state, bg_err *err)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return BG_OK;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path)
        return bg_err_set(err, BG_EINVAL, "NOTIFY_SOCKET '%s' is not a socket path", path);
    memcpy(sa.sun_path, path, n);
    /* '@' names a socket in the abstract namespace: a leading NUL, no terminator. */
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return bg_err_set(err, BG_EIO, "notify socket: %s", strerror(errno));
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    int saved = errno;
    close(fd);
    if (w < 0)
        return bg_err_set(err, BG_EIO, "notify %s: %s", path, strerror(saved));
    return BG_OK;
}
