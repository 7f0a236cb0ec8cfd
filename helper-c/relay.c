/* relay.c: the sandbox's terminal and the relay of the host's stdio (ops
 * `tty` and `relay`, PLAN.md "Terminal").
 *
 * Nothing inside the sandbox ever holds a file descriptor of the host's
 * terminal: the init's fds 0, 1, 2 become pipes (relay, and always with
 * tty), the monitor copies between them and its own fds. With `tty` the
 * init opens a pseudo-terminal from the sandbox's own devpts, gives the
 * command its slave as stdio and controlling terminal, and sends the master
 * to the monitor over a socketpair (SCM_RIGHTS): the monitor (host pid
 * namespace, unreachable from inside) relays the host terminal to it, puts
 * the host terminal in raw mode and restores it on every exit path.
 *
 * Host fds stay blocking (they may be shared with the user's shell, and
 * O_NONBLOCK is a property of the open file): they are read only after
 * poll says so. Our own ends (pipes, the master) are non-blocking and
 * buffered, so a full pty never blocks the output side.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER 0x5441
#endif

#define PUMP_BUF 8192

struct pump {
	int from, to;
	int to_ours;  /* `to` is our non-blocking end (pipe, master) */
	int eof;      /* `from` is done */
	int eof_char; /* at EOF of the host's stdin, send the terminal's VEOF */
	size_t len, off;
	char buf[PUMP_BUF];
};

static struct {
	int active;     /* relay or tty in the plan */
	int tty;        /* a `tty` op */
	int tty_input;  /* tty relays the host's stdin */
	int relay_mask; /* relay: fds 0..2 replaced by pipes */
	int host[3];    /* the monitor's own stdio, saved before the fork */
	int child[3];   /* the init's ends, -1 once closed */
	int ours[3];    /* our ends of the pipes, -1 if none */
	int sock[2];    /* tty: [0] monitor, [1] init */
	int master;     /* tty: the pty master, -1 until received */
	int term;       /* host fd that is a terminal (winsize), -1 */
	int raw;        /* the host terminal is in raw mode: saved holds the old mode */
	struct termios saved;
	struct pump in, out, err;
} R = {.sock = {-1, -1}, .master = -1, .term = -1};

int g_tty_sock = -1; /* the init's end of the socketpair, -1 without tty */

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void pump_init(struct pump *p, int from, int to, int to_ours)
{
	p->from = from;
	p->to = to;
	p->to_ours = to_ours;
	p->eof = from < 0 || to < 0;
	p->len = p->off = 0;
	p->eof_char = 0;
}

void relay_scan(struct plan *p)
{
	for (int i = 0; i < p->nops; i++) {
		const struct op *o = &p->ops[i];
		if (o->kind == OP_TTY) {
			R.active = R.tty = 1;
			R.tty_input = o->u.tty_input;
		} else if (o->kind == OP_RELAY) {
			R.active = 1;
			R.relay_mask |= o->u.relay;
		}
	}
}

/* The monitor reads the host's terminal itself: it must stay in hutch's
 * process group (the terminal's foreground group when hutch is), so that
 * job control applies to it like to any program: a backgrounded hutch
 * that reads is stopped by SIGTTIN. */
int relay_reads_terminal(void)
{
	if (!R.active || !isatty(0))
		return 0;
	return R.tty ? R.tty_input : (R.relay_mask & 1);
}

/* Monitor, before it forks the init: the init's 0, 1, 2 become pipes. */
void relay_before_fork(void)
{
	if (!R.active)
		return;
	int mask = R.tty ? 7 : R.relay_mask;
	for (int fd = 0; fd < 3; fd++) {
		R.host[fd] = R.child[fd] = R.ours[fd] = -1;
		if (!(mask & (1 << fd)))
			continue;
		int pp[2];
		if ((R.host[fd] = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0 || pipe2(pp, O_CLOEXEC))
			fail_errno("relay of fd %d", fd);
		/* stdin: the init reads pp[0]; stdout/stderr: it writes pp[1] */
		R.child[fd] = fd == 0 ? pp[0] : pp[1];
		R.ours[fd] = fd == 0 ? pp[1] : pp[0];
		nonblock(R.ours[fd]);
	}
	if (R.tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, R.sock))
		fail_errno("socketpair for the terminal");
	g_tty_sock = R.sock[1];
	for (int fd = 0; fd < 3; fd++)
		if (R.child[fd] >= 0 && dup2(R.child[fd], fd) < 0)
			fail_errno("dup2");
	for (int fd = 0; fd < 3; fd++)
		if (R.host[fd] >= 0 && isatty(R.host[fd]) && R.term < 0)
			R.term = R.host[fd];
}

/* The init, just after the fork: drop every monitor-side fd. */
void relay_in_child(void)
{
	if (!R.active)
		return;
	for (int fd = 0; fd < 3; fd++) {
		if (R.host[fd] >= 0)
			close(R.host[fd]);
		if (R.ours[fd] >= 0)
			close(R.ours[fd]);
		if (R.child[fd] >= 0 && R.child[fd] != fd)
			close(R.child[fd]);
	}
	if (R.sock[0] >= 0)
		close(R.sock[0]);
}

static void copy_winsize(void)
{
	struct winsize ws;
	if (R.master >= 0 && R.term >= 0 && ioctl(R.term, TIOCGWINSZ, &ws) == 0)
		ioctl(R.master, TIOCSWINSZ, &ws);
}

static int recv_master(int sock)
{
	char data, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&data, 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	ssize_t r;
	while ((r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	struct cmsghdr *c = r == 1 ? CMSG_FIRSTHDR(&m) : NULL;
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1; /* the init failed before it had a terminal: its status says why */
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* Monitor, after the fork: its own stdio back, the master, raw mode. */
void relay_after_fork(void)
{
	if (!R.active)
		return;
	for (int fd = 0; fd < 3; fd++) {
		if (R.child[fd] < 0)
			continue;
		if (dup2(R.host[fd], fd) < 0)
			fail_errno("dup2");
		close(R.child[fd]);
		R.child[fd] = -1;
	}
	if (!R.tty) {
		pump_init(&R.in, R.host[0] >= 0 ? 0 : -1, R.ours[0], 1);
		pump_init(&R.out, R.ours[1], R.host[1] >= 0 ? 1 : -1, 0);
		pump_init(&R.err, R.ours[2], R.host[2] >= 0 ? 2 : -1, 0);
		return;
	}
	/* the init's stdin is never read: it only prints errors */
	close(R.ours[0]);
	R.ours[0] = -1;
	close(R.sock[1]);
	g_tty_sock = -1;
	R.master = recv_master(R.sock[0]);
	close(R.sock[0]);
	R.sock[0] = -1;
	pump_init(&R.err, R.ours[2], 2, 0);
	pump_init(&R.out, R.ours[1], 1, 0); /* the init's own stdout (nothing normally) */
	if (R.master < 0)
		return;
	nonblock(R.master);
	copy_winsize();
	/* host stdout <- master; host stdin -> master (tty stdin). The init's
	 * stdout pipe is dropped: the init writes only to stderr. */
	pump_init(&R.out, R.master, 1, 0);
	close(R.ours[1]);
	R.ours[1] = -1;
	pump_init(&R.in, R.tty_input ? 0 : -1, R.master, 1);
	R.in.eof_char = 1;
	if (R.tty_input && isatty(0) && tcgetattr(0, &R.saved) == 0) {
		struct termios t = R.saved;
		cfmakeraw(&t);
		/* SIGTTOU (default: stop) applies here: a backgrounded hutch -it
		 * waits for `fg` before it takes the terminal */
		if (tcsetattr(0, TCSADRAIN, &t) == 0)
			R.raw = 1;
	}
}

/* The host terminal as it was, on every exit path of the monitor. */
void relay_restore(void)
{
	if (!R.raw)
		return;
	/* hutch may be gone and the shell back in the foreground: restore anyway */
	signal(SIGTTOU, SIG_IGN);
	tcsetattr(0, TCSADRAIN, &R.saved);
	R.raw = 0;
}

void relay_winch(void)
{
	copy_winsize();
}

int relay_has_tty(void)
{
	return R.master >= 0;
}

static struct pump *pumps[3] = {&R.in, &R.out, &R.err};

int relay_pollfds(struct pollfd *pf)
{
	int n = 0;
	if (!R.active)
		return 0;
	for (int i = 0; i < 3; i++) {
		struct pump *p = pumps[i];
		if (p->eof && !p->len)
			continue;
		if (p->len)
			pf[n++] = (struct pollfd){p->to, POLLOUT, 0};
		else
			pf[n++] = (struct pollfd){p->from, POLLIN, 0};
	}
	return n;
}

static void pump_close(struct pump *p)
{
	p->eof = 1;
	p->len = 0;
	if (p == &R.in && R.ours[0] >= 0 && p->to == R.ours[0]) {
		close(R.ours[0]); /* the command sees EOF */
		R.ours[0] = -1;
	}
}

/* Move what can move without blocking; returns 1 if anything happened. */
static int pump_step(struct pump *p, int can_read, int can_write)
{
	int did = 0;
	if (!p->len && !p->eof && can_read) {
		ssize_t r = read(p->from, p->buf, sizeof p->buf);
		if (r > 0) {
			p->len = (size_t)r;
			p->off = 0;
			did = 1;
		} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
			/* EOF, or EIO: the pty's slave is closed */
			did = 1;
			if (p->eof_char && R.master >= 0) {
				struct termios t;
				char c = tcgetattr(R.master, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
				if (write(R.master, &c, 1) < 0) { /* the pty is gone: nothing to end */
				}
				p->eof = 1;
			} else
				pump_close(p);
			return did;
		}
	}
	if (p->len && can_write) {
		ssize_t w = write(p->to, p->buf + p->off, p->len);
		if (w > 0) {
			p->off += (size_t)w;
			p->len -= (size_t)w;
			did = 1;
		} else if (w < 0 && errno != EINTR && errno != EAGAIN) {
			pump_close(p); /* reader gone (EPIPE): stop copying this way */
			did = 1;
		}
	}
	return did;
}

void relay_events(struct pollfd *pf, int n)
{
	int k = 0;
	for (int i = 0; i < 3 && k < n; i++) {
		struct pump *p = pumps[i];
		if (p->eof && !p->len)
			continue;
		short ev = pf[k++].revents;
		if (!ev)
			continue;
		if (p->len)
			pump_step(p, 0, 1);
		else
			pump_step(p, 1, 0);
	}
}

/* After the init exited: copy what is still buffered (the command's last
 * output). Everything inside is dead, so every writer is gone and the
 * reads end with EOF or EIO; a leftover process without a pid namespace
 * may still hold a pipe, hence the idle timeout. */
void relay_drain(void)
{
	if (!R.active)
		return;
	pump_close(&R.in);
	for (;;) {
		struct pollfd pf[3];
		int n = relay_pollfds(pf);
		if (!n || poll(pf, (nfds_t)n, 200) <= 0)
			break;
		relay_events(pf, n);
	}
}

/* ---------- inside: the init and the command ---------- */

static void send_fd(int sock, int fd)
{
	char data = 't', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&data, 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(sock, &m, 0) != 1)
		fail_errno("sending the terminal to the monitor");
}

/* The init, after its ops (the sandbox's devpts is mounted and the root
 * pivoted): a pty from the sandbox's own /dev/pts. Returns the slave, or
 * -1 without `tty`. */
int pty_open_inside(void)
{
	if (g_tty_sock < 0)
		return -1;
	int master = open_path("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		fail_errno("open /dev/pts/ptmx (tty needs the sandbox's devpts on /dev/pts)");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock))
		fail_errno("unlock the pty");
	/* the slave of this very master, from its own devpts: no path lookup */
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		fail_errno("open the pty's slave (TIOCGPTPEER)");
	send_fd(g_tty_sock, master);
	close(master);
	close(g_tty_sock);
	g_tty_sock = -1;
	return slave;
}

/* The command: a session of its own with the pty as controlling terminal
 * and stdio; its process group is the terminal's foreground group, so the
 * line discipline delivers Ctrl-C and Ctrl-Z inside. */
void pty_attach(int slave)
{
	if (slave < 0)
		return;
	if (setsid() < 0)
		fail_errno("setsid");
	if (ioctl(slave, TIOCSCTTY, 0))
		fail_errno("TIOCSCTTY");
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0)
			fail_errno("dup2 the terminal");
	if (slave > 2)
		close(slave);
}
