/*
 * oracle-helper: tiny static helper that runs inside the QEMU guest of the
 * hotmem kernel oracle (tools/kernel-oracle/).  Build: gcc -O2 -static.
 *
 * Sub-commands
 *   oracle-helper write PATH VALUE
 *       write(2) VALUE to PATH once (no retry) and print
 *       "<ok|ERRNO-NAME> <elapsed-ns>" (a SIGALRM after $ORACLE_WRITE_TIMEOUT
 *       seconds, default 300, interrupts a write that hangs -> EINTR).
 *   oracle-helper kpage START_PFN END_PFN FLAGS_OUT COUNT_OUT
 *       copy /proc/kpageflags and /proc/kpagecount for [START, END) to files
 *       (raw little-endian u64 per pfn, as the kernel returns it).
 *   oracle-helper run SCENARIO DEVICE
 *       run a whole scenario in ONE process (so that no fork/exec of busybox
 *       perturbs the page allocator between steps).  All buffers are
 *       allocated, populated and mlock()ed before the first step, i.e. in boot
 *       memory.  After every step the kernel's views are captured and appended
 *       as a ustar stream to DEVICE with O_DIRECT (no page cache involved).
 *
 * Scenario file (one directive per line, '#' comments):
 *   range START_PFN END_PFN          kpageflags/kpagecount range to capture
 *   capture-dir GLOB                 also capture every regular file directly
 *                                    in each directory matching GLOB (e.g. the
 *                                    virtio bus's devices) at each step; its
 *                                    symlinks go to a file "links" there
 *   file PATH                        also capture PATH (sysfs/proc) every step
 *   link PATH                        also capture readlink(PATH) every step,
 *                                    as a file named PATH (e.g. a driver link;
 *                                    absent when the link is)
 *   do PATH=VALUE                    one sysfs write without a capture of its
 *                                    own and without settling (setup);
 *                                    recorded in results.txt as
 *                                    "- do PATH RESULT ELAPSED_NS DETAIL"
 *   step DIR OP BLOCK                OP: boot | online | online_movable |
 *                                    online_kernel | offline | hot-add |
 *                                    hot-remove | dlpar-add | dlpar-remove ;
 *                                    BLOCK: number or '-'
 * and, for driver-managed hot-add (virtio-mem, dax/kmem), where the third
 * field is an argument (up to 255 characters) instead of a block:
 *   step DIR insmod PATH.ko          finit_module(PATH) from the initramfs
 *                                    (no fork/exec), then settle
 *   step DIR host ARG                print "@@ORACLE HOST ARG@@", read the
 *                                    host's answer "go RESULT DETAIL" from
 *                                    stdin (the serial console), then settle
 *   step DIR write PATH=VALUE        one sysfs write (a driver bind/unbind, a
 *                                    dax attribute, ...), then settle
 * hot-add / hot-remove print "@@ORACLE HOTADD memoryN@@" /
 * "@@ORACLE HOTREMOVE memoryN@@" on the console (the host drives QMP when it
 * sees them) and wait until /sys/devices/system/memory/memoryN appears /
 * disappears (timeout $ORACLE_HOTPLUG_TIMEOUT seconds, default 300).
 * dlpar-add / dlpar-remove print the same markers; dlpar-add waits until
 * memoryN/state reads "online" (pseries DLPAR onlines the blocks itself).
 * "Settle" = poll every memory block's state and MemTotal every 100 ms until
 * they have not changed for $ORACLE_SETTLE_MS (default 3000) ms: the
 * driver adds and onlines memory from its own workqueue, after the device
 * (or the write) already returned.
 *
 * The stream contains steps/DIR/<captured files> and results.txt with one
 * line per step: "DIR OP BLOCK RESULT ELAPSED_NS DETAIL...".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MEMDIR "/sys/devices/system/memory"
#define PARAMDIR "/sys/module/memory_hotplug/parameters"
#define TEXTBUF (4u << 20)
#define OUTBUF (24u << 20)
#define RESBUF (1u << 20)

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig) { (void)sig; alarmed = 1; }

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "EUNKNOWN";
}

static void say(const char *fmt, ...)
{
	char b[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof b - 1)
		n = sizeof b - 1;
	if (write(1, b, n) < 0) { /* console gone: nothing to do */ }
}

static void die(const char *what)
{
	say("@@ORACLE FATAL %s:%s@@\n", what, errname(errno));
	exit(2);
}

static void *big_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	/* no THP: khugepaged would collapse these buffers into huge pages
	 * allocated from the highest zone, i.e. hot-added ZONE_MOVABLE memory
	 * (seen on 6.1 with virtio-mem: mlocked anon THPs in memory32) */
	madvise(p, n, MADV_NOHUGEPAGE);
	memset(p, 0, n);
	return p;
}

/* ---- sysfs write with errno + timing ---------------------------------- */

struct wres { int err; uint64_t ns; };

static struct wres sysfs_write(const char *path, const char *val)
{
	struct wres r = { 0, 0 };
	unsigned tmo = 300;
	const char *t = getenv("ORACLE_WRITE_TIMEOUT");
	if (t && atoi(t) > 0)
		tmo = atoi(t);
	int fd = open(path, O_WRONLY);
	if (fd < 0) {
		r.err = errno;
		return r;
	}
	alarmed = 0;
	alarm(tmo);
	uint64_t t0 = now_ns();
	ssize_t n = write(fd, val, strlen(val));
	int e = errno;
	r.ns = now_ns() - t0;
	alarm(0);
	if (n < 0)
		r.err = e;
	else if ((size_t)n != strlen(val))
		r.err = EIO;
	close(fd);
	return r;
}

/* ---- reading whole files ----------------------------------------------- */

/* read a /proc or sysfs file completely; returns length or -errno */
static long slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	for (;;) {
		if (len == cap) {
			close(fd);
			return -EFBIG;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	return (long)len;
}

/* pread [start,end) pfns of a kpage* file; returns bytes read (short if the
 * kernel returns EOF, e.g. beyond max_pfn) or -errno */
static long read_kpage(const char *path, uint64_t start, uint64_t end, char *buf)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	size_t want = (end - start) * 8, got = 0;
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, start * 8 + got);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	return (long)got;
}

/* ---- ustar stream on a block device with O_DIRECT ---------------------- */

static int outfd = -1;
static char *outbuf;
static size_t outused;
static uint64_t outoff;

static void out_flush(void)
{
	size_t done = 0;
	while (done < outused) {
		ssize_t n = pwrite(outfd, outbuf + done, outused - done, outoff + done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("pwrite");
		}
		done += n;
	}
	outoff += outused;
	outused = 0;
}

static void tar_add(const char *name, const char *data, size_t len)
{
	size_t need = 512 + ((len + 511) & ~(size_t)511);
	if (need > OUTBUF)
		die("file too large");
	if (outused + need > OUTBUF)
		out_flush();
	char *h = outbuf + outused;
	memset(h, 0, 512);
	size_t nl = strlen(name);
	if (nl <= 100) {
		memcpy(h, name, nl);
	} else {
		/* split into prefix (<=155) / name (<=100) at a '/' */
		const char *cut = name + nl - 100;
		while (*cut && *cut != '/')
			cut++;
		if (!*cut || cut - name > 155)
			die("name too long");
		memcpy(h + 345, name, cut - name);
		memcpy(h, cut + 1, strlen(cut + 1));
	}
	snprintf(h + 100, 8, "%07o", 0644);
	snprintf(h + 108, 8, "%07o", 0);
	snprintf(h + 116, 8, "%07o", 0);
	snprintf(h + 124, 12, "%011lo", (unsigned long)len);
	snprintf(h + 136, 12, "%011o", 0);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	h[155] = ' ';
	memcpy(h + 512, data, len);
	memset(h + 512 + len, 0, need - 512 - len);
	outused += need;
}

static void tar_finish(void)
{
	if (outused + 1024 > OUTBUF)
		out_flush();
	memset(outbuf + outused, 0, 1024);
	outused += 1024;
	out_flush();
	fsync(outfd);
}

/* ---- capture ------------------------------------------------------------ */

static char *textbuf, *kbuf, *resbuf;
static size_t reslen;
static uint64_t range_start, range_end;
static char errlog[8192];
static size_t errlen;

static void res_add(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(resbuf + reslen, RESBUF - reslen, fmt, ap);
	va_end(ap);
	if (n > 0 && reslen + n < RESBUF)
		reslen += n;
}

static void note_err(const char *path, long e)
{
	int n = snprintf(errlog + errlen, sizeof errlog - errlen, "%s %s\n",
			 path, errname((int)-e));
	if (n > 0 && errlen + n < sizeof errlog)
		errlen += n;
}

static void cap_file(const char *dir, const char *src, const char *rel)
{
	char name[512];
	long n = slurp(src, textbuf, TEXTBUF);
	if (n < 0) {
		note_err(rel, n);
		return;
	}
	snprintf(name, sizeof name, "steps/%s/%s", dir, rel);
	tar_add(name, textbuf, n);
}

#define MAXEXTRA 128
static char extra[MAXEXTRA][256];
static char extra_link[MAXEXTRA];
static size_t nextra;

static int blkcmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

static int namecmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

#define MAXCAPDIRS 16
static char capdirs[MAXCAPDIRS][256];
static size_t ncapdirs;

/* regular files directly in the directories matching each capture-dir glob;
 * symlinks (driver, subsystem, ...) are recorded as "<name> -> <target>" in
 * a file "links" of that directory */
static void capture_dirs(const char *dir)
{
	char src[1024 + 512], rel[1024 + 512], links[4096];
	for (size_t g = 0; g < ncapdirs; g++) {
		glob_t gl;
		if (glob(capdirs[g], 0, NULL, &gl))
			continue;
		for (size_t i = 0; i < gl.gl_pathc; i++) {
			DIR *d = opendir(gl.gl_pathv[i]);
			if (!d)
				continue;
			size_t ll = 0;
			struct dirent *de;
			static char names[256][256];
			size_t nn = 0;
			while ((de = readdir(d)) && nn < 256)
				if (de->d_name[0] != '.')
					snprintf(names[nn++], sizeof names[0], "%s", de->d_name);
			closedir(d);
			qsort(names, nn, sizeof names[0], namecmp);
			for (size_t k = 0; k < nn; k++) {
				struct stat st;
				snprintf(src, sizeof src, "%.1000s/%.255s", gl.gl_pathv[i], names[k]);
				if (lstat(src, &st))
					continue;
				if (S_ISLNK(st.st_mode)) {
					char t[512];
					ssize_t n = readlink(src, t, sizeof t - 1);
					if (n > 0 && ll < sizeof links - 600) {
						t[n] = 0;
						ll += snprintf(links + ll, sizeof links - ll, "%s -> %s\n",
							       names[k], t);
					}
				} else if (S_ISREG(st.st_mode) && (st.st_mode & 0444)) {
					cap_file(dir, src, src + 1);
				}
			}
			if (ll) {
				snprintf(rel, sizeof rel, "steps/%s/%s/links", dir, gl.gl_pathv[i] + 1);
				tar_add(rel, links, ll);
			}
		}
		globfree(&gl);
	}
}

static void capture(const char *dir)
{
	static const char *procs[] = { "buddyinfo", "zoneinfo", "pagetypeinfo",
				       "meminfo", "vmstat", "iomem" };
	char src[512], rel[512], name[512];
	errlen = 0;

	/* kpage* first: the hot-pluggable range is what matters most */
	if (range_end > range_start) {
		long n = read_kpage("/proc/kpageflags", range_start, range_end, kbuf);
		if (n < 0)
			note_err("kpageflags", n);
		else {
			snprintf(name, sizeof name, "steps/%s/kpageflags", dir);
			tar_add(name, kbuf, n);
		}
		n = read_kpage("/proc/kpagecount", range_start, range_end, kbuf);
		if (n < 0)
			note_err("kpagecount", n);
		else {
			snprintf(name, sizeof name, "steps/%s/kpagecount", dir);
			tar_add(name, kbuf, n);
		}
	}
	for (size_t i = 0; i < sizeof procs / sizeof *procs; i++) {
		snprintf(src, sizeof src, "/proc/%s", procs[i]);
		cap_file(dir, src, src + 1);
	}
	cap_file(dir, MEMDIR "/block_size_bytes",
		 "sys/devices/system/memory/block_size_bytes");
	cap_file(dir, MEMDIR "/auto_online_blocks",
		 "sys/devices/system/memory/auto_online_blocks");

	/* every memoryN block, numerically sorted */
	static long blocks[65536];
	size_t nb = 0;
	DIR *d = opendir(MEMDIR);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) && nb < 65536) {
			char *end;
			if (strncmp(de->d_name, "memory", 6))
				continue;
			long v = strtol(de->d_name + 6, &end, 10);
			if (end != de->d_name + 6 && !*end)
				blocks[nb++] = v;
		}
		closedir(d);
	}
	qsort(blocks, nb, sizeof *blocks, blkcmp);
	static const char *attrs[] = { "state", "online", "phys_index",
				       "phys_device", "removable", "valid_zones" };
	for (size_t i = 0; i < nb; i++)
		for (size_t a = 0; a < sizeof attrs / sizeof *attrs; a++) {
			snprintf(src, sizeof src, MEMDIR "/memory%ld/%s", blocks[i], attrs[a]);
			cap_file(dir, src, src + 1);
		}

	/* module parameters */
	static char names[64][256];
	size_t nn = 0;
	d = opendir(PARAMDIR);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) && nn < 64) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(names[nn++], sizeof names[0], "%s", de->d_name);
		}
		closedir(d);
	}
	qsort(names, nn, sizeof names[0], namecmp);
	for (size_t i = 0; i < nn; i++) {
		snprintf(src, sizeof src, PARAMDIR "/%.200s", names[i]);
		cap_file(dir, src, src + 1);
	}

	capture_dirs(dir);

	/* scenario-named extras (dax / nvdimm sysfs, driver links) */
	for (size_t i = 0; i < nextra; i++) {
		if (!extra_link[i]) {
			cap_file(dir, extra[i], extra[i] + 1);
			continue;
		}
		ssize_t n = readlink(extra[i], textbuf, TEXTBUF);
		if (n < 0)
			continue;	/* no link (unbound): no file */
		snprintf(name, sizeof name, "steps/%s/%s", dir, extra[i] + 1);
		tar_add(name, textbuf, n);
	}

	/* kernel log (raw syslog format "<lvl>[ time] msg") */
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, textbuf, TEXTBUF);
	if (n < 0)
		note_err("dmesg", -errno);
	else {
		snprintf(name, sizeof name, "steps/%s/dmesg", dir);
		tar_add(name, textbuf, n);
	}
	if (errlen) {
		snprintf(name, sizeof name, "steps/%s/capture-errors.txt", dir);
		tar_add(name, errlog, errlen);
	}
	(void)rel;
}

/* ---- the scenario runner ------------------------------------------------ */

static int path_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* wait until memoryN exists (want=1) or is gone (want=0) */
static int wait_block(long blk, int want, uint64_t *ns)
{
	char p[256];
	unsigned tmo = 300;
	const char *t = getenv("ORACLE_HOTPLUG_TIMEOUT");
	if (t && atoi(t) > 0)
		tmo = atoi(t);
	snprintf(p, sizeof p, MEMDIR "/memory%ld/state", blk);
	uint64_t t0 = now_ns();
	for (;;) {
		if (path_exists(p) == want) {
			*ns = now_ns() - t0;
			return 0;
		}
		if (now_ns() - t0 > (uint64_t)tmo * 1000000000ull) {
			*ns = now_ns() - t0;
			return ETIMEDOUT;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* a fingerprint of what the driver changes while it adds and onlines memory
 * on its own: every memory block and its state, and MemTotal */
static uint64_t mem_fingerprint(void)
{
	uint64_t h = 1469598103934665603ull;
	char p[300], b[64];
	DIR *d = opendir(MEMDIR);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (strncmp(de->d_name, "memory", 6) || !de->d_name[6] ||
			    de->d_name[6] < '0' || de->d_name[6] > '9')
				continue;
			snprintf(p, sizeof p, MEMDIR "/%s/state", de->d_name);
			long n = slurp(p, b, sizeof b);
			uint64_t x = 0;
			for (const char *c = de->d_name; *c; c++)
				x = x * 131 + (unsigned char)*c;
			for (long i = 0; i < n; i++)
				x = x * 131 + (unsigned char)b[i];
			h += x * 0x9e3779b97f4a7c15ull;   /* order-independent */
		}
		closedir(d);
	}
	long n = slurp("/proc/meminfo", textbuf, TEXTBUF);
	char *e = n > 0 ? memchr(textbuf, '\n', n) : NULL;  /* MemTotal: first line */
	for (char *c = textbuf; e && c < e; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	return h;
}

/* wait until mem_fingerprint() is unchanged for $ORACLE_SETTLE_MS; returns
 * the ns until the last change */
static uint64_t settle(void)
{
	unsigned ms = 3000, tmo = 300;
	const char *t = getenv("ORACLE_SETTLE_MS");
	if (t && atoi(t) > 0)
		ms = atoi(t);
	t = getenv("ORACLE_HOTPLUG_TIMEOUT");
	if (t && atoi(t) > 0)
		tmo = atoi(t);
	uint64_t t0 = now_ns(), last = t0, h = mem_fingerprint();
	while (now_ns() - last < (uint64_t)ms * 1000000ull &&
	       now_ns() - t0 < (uint64_t)tmo * 1000000000ull) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		uint64_t h2 = mem_fingerprint();
		if (h2 != h) {
			h = h2;
			last = now_ns();
		}
	}
	return last - t0;
}

/* one line from the serial console (the host's answer); strips CR/LF */
static int read_host_line(char *buf, size_t cap)
{
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n' || c == '\r') {
			if (n == 0)
				continue;
			break;
		}
		if (n < cap - 1)
			buf[n++] = c;
	}
	buf[n] = 0;
	return 0;
}

/* wait until memoryN/state reads "online" */
static int wait_online(long blk, uint64_t *ns)
{
	char p[256], b[64];
	unsigned tmo = 300;
	const char *t = getenv("ORACLE_HOTPLUG_TIMEOUT");
	if (t && atoi(t) > 0)
		tmo = atoi(t);
	snprintf(p, sizeof p, MEMDIR "/memory%ld/state", blk);
	uint64_t t0 = now_ns();
	for (;;) {
		long n = slurp(p, b, sizeof b - 1);
		if (n > 0 && !strncmp(b, "online", 6)) {
			*ns = now_ns() - t0;
			return 0;
		}
		if (now_ns() - t0 > (uint64_t)tmo * 1000000000ull) {
			*ns = now_ns() - t0;
			return ETIMEDOUT;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* The steps the host does over QMP when the guest prints the mark; the guest
 * then waits until memoryN is gone (0), appears (1) or reads online
 * (QMP_ONLINE: pseries DLPAR onlines the LMBs it adds itself). */
#define QMP_ONLINE 2
static const struct qmp_step {
	const char *op, *mark, *how, *done, *failed;
	int want;
} qmp_steps[] = {
	{ "dlpar-add", "HOTADD", "QMP device_add (pseries DLPAR)", "online", "not online",
	  QMP_ONLINE },
	{ "dlpar-remove", "HOTREMOVE", "QMP device_del (pseries DLPAR)", "disappeared",
	  "still present", 0 },
	{ "hot-add", "HOTADD", "QMP object-add+device_add pc-dimm", "appeared", "did not appear", 1 },
	{ "hot-remove", "HOTREMOVE", "QMP device_del pc-dimm (ACPI eject)", "disappeared",
	  "still present", 0 },
};

static const struct qmp_step *qmp_step(const char *op)
{
	for (size_t i = 0; i < sizeof qmp_steps / sizeof qmp_steps[0]; i++)
		if (!strcmp(op, qmp_steps[i].op))
			return &qmp_steps[i];
	return NULL;
}

static int run(const char *scen, const char *dev)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART: a hung write returns EINTR */
	sigaction(SIGALRM, &sa, NULL);

	static char sbuf[65536];
	long sl = slurp(scen, sbuf, sizeof sbuf - 1);
	if (sl < 0) {
		errno = (int)-sl;
		die("scenario");
	}
	sbuf[sl] = 0;

	/* parse "range" first so buffers can be sized */
	char *save = NULL, *copy = strdup(sbuf);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, b;
		char x[256];
		if (sscanf(l, "range %lli %lli", &a, &b) == 2) {
			range_start = a;
			range_end = b;
		} else if (sscanf(l, "capture-dir %255s", x) == 1 && ncapdirs < MAXCAPDIRS) {
			snprintf(capdirs[ncapdirs++], sizeof capdirs[0], "%s", x);
		} else if (nextra < MAXEXTRA && sscanf(l, "file %255s", x) == 1) {
			extra_link[nextra] = 0;
			strcpy(extra[nextra++], x);
		} else if (nextra < MAXEXTRA && sscanf(l, "link %255s", x) == 1) {
			extra_link[nextra] = 1;
			strcpy(extra[nextra++], x);
		}
	}
	free(copy);

	size_t kcap = (range_end - range_start) * 8 + 4096;
	if (kcap + 1024 > OUTBUF)
		die("range too large");
	textbuf = big_alloc(TEXTBUF);
	kbuf = big_alloc(kcap);
	outbuf = big_alloc(OUTBUF);
	resbuf = big_alloc(RESBUF);
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		say("@@ORACLE WARN mlockall:%s@@\n", errname(errno));

	outfd = open(dev, O_WRONLY | O_DIRECT);
	if (outfd < 0)
		die(dev);

	struct utsname u;
	uname(&u);
	long n = slurp("/proc/cmdline", textbuf, TEXTBUF);
	tar_add("uname-r", u.release, strlen(u.release));
	if (n > 0)
		tar_add("proc-cmdline", textbuf, n);
	tar_add("scenario", sbuf, sl);
	say("@@ORACLE START %s@@\n", u.release);

	save = NULL;
	for (char *l = strtok_r(sbuf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char dir[128], op[64], blks[256];
		if (sscanf(l, "do %255s", blks) == 1) {
			char *eq = strchr(blks, '=');
			struct wres r = { EINVAL, 0 };
			if (eq) {
				*eq = 0;
				r = sysfs_write(blks, eq + 1);
			}
			res_add("- do %s %s %llu write '%s' to %s\n", blks,
				r.err ? errname(r.err) : "ok", (unsigned long long)r.ns,
				eq ? eq + 1 : "", blks);
			say("@@ORACLE DO %s %s@@\n", blks, r.err ? errname(r.err) : "ok");
			continue;
		}
		if (sscanf(l, "step %127s %63s %255s", dir, op, blks) != 3)
			continue;
		long blk = strcmp(blks, "-") ? atol(blks) : -1;
		int err = 0;
		uint64_t ns = 0;
		char detail[512] = "";
		char path[256];
		char hostres[64] = "";
		const struct qmp_step *q;

		if (!strcmp(op, "boot")) {
			snprintf(detail, sizeof detail, "state right after boot");
		} else if (!strcmp(op, "online") || !strcmp(op, "online_movable") ||
			   !strcmp(op, "online_kernel") || !strcmp(op, "offline")) {
			snprintf(path, sizeof path, MEMDIR "/memory%ld/state", blk);
			struct wres r = sysfs_write(path, op);
			err = r.err;
			ns = r.ns;
			snprintf(detail, sizeof detail,
				 "write '%s' to memory%ld/state: %s after %.3f ms (TCG time)",
				 op, blk, err ? errname(err) : "ok", ns / 1e6);
		} else if ((q = qmp_step(op))) {
			say("@@ORACLE %s memory%ld@@\n", q->mark, blk);
			err = q->want == QMP_ONLINE ? wait_online(blk, &ns) : wait_block(blk, q->want, &ns);
			snprintf(detail, sizeof detail, "%s; memory%ld %s after %.3f ms",
				 q->how, blk, err ? q->failed : q->done, ns / 1e6);
		} else if (!strcmp(op, "insmod")) {
			uint64_t t0 = now_ns();
			int fd = open(blks, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || syscall(SYS_finit_module, fd, "", 0))
				err = errno;
			if (fd >= 0)
				close(fd);
			uint64_t s = err ? 0 : settle();
			ns = now_ns() - t0;
			snprintf(detail, sizeof detail,
				 "finit_module(%s): %s; memory blocks and MemTotal last changed %.3f ms later",
				 blks, err ? errname(err) : "ok", s / 1e6);
		} else if (!strcmp(op, "host")) {
			char ans[400], res[64] = "ERR", *rest = "";
			uint64_t t0 = now_ns();
			say("@@ORACLE HOST %s@@\n", blks);
			if (read_host_line(ans, sizeof ans) ||
			    sscanf(ans, "go %63s", res) != 1) {
				err = EIO;
			} else {
				rest = ans + 3 + strlen(res);
				while (*rest == ' ')
					rest++;
			}
			uint64_t s = settle();
			ns = now_ns() - t0;
			snprintf(detail, sizeof detail,
				 "host %s: %s %s; memory blocks and MemTotal last changed %.3f ms after the host's answer",
				 blks, err ? "no answer" : res, rest, s / 1e6);
			/* the host's outcome (ok or an errno name) is the step's */
			if (!err)
				snprintf(hostres, sizeof hostres, "%s", res);
		} else if (!strcmp(op, "write")) {
			char *eq = strchr(blks, '=');
			if (!eq) {
				err = EINVAL;
			} else {
				*eq = 0;
				struct wres r = sysfs_write(blks, eq + 1);
				err = r.err;
				ns = r.ns;
				uint64_t s = settle();
				snprintf(detail, sizeof detail,
					 "write '%s' to %s: %s after %.3f ms (TCG time); memory blocks and MemTotal last changed %.3f ms later",
					 eq + 1, blks, err ? errname(err) : "ok", ns / 1e6, s / 1e6);
				*eq = '=';
			}
		} else {
			err = EINVAL;
			snprintf(detail, sizeof detail, "unknown op");
		}
		capture(dir);
		out_flush();
		const char *result = hostres[0] ? hostres : err ? errname(err) : "ok";
		res_add("%s %s %s %s %llu %s\n", dir, op, blks, result,
			(unsigned long long)ns, detail);
		say("@@ORACLE STEP %s %s@@\n", dir, result);
	}
	tar_add("results.txt", resbuf, reslen);
	tar_finish();
	close(outfd);
	say("@@ORACLE DONE@@\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "write")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		sigaction(SIGALRM, &sa, NULL);
		struct wres r = sysfs_write(argv[2], argv[3]);
		printf("%s %llu\n", r.err ? errname(r.err) : "ok", (unsigned long long)r.ns);
		return r.err ? 1 : 0;
	}
	if (argc == 6 && !strcmp(argv[1], "kpage")) {
		uint64_t s = strtoull(argv[2], NULL, 0), e = strtoull(argv[3], NULL, 0);
		if (e <= s)
			return 2;
		char *b = big_alloc((e - s) * 8);
		const char *src[2] = { "/proc/kpageflags", "/proc/kpagecount" };
		for (int i = 0; i < 2; i++) {
			long n = read_kpage(src[i], s, e, b);
			if (n < 0) {
				fprintf(stderr, "%s: %s\n", src[i], errname((int)-n));
				return 1;
			}
			FILE *f = fopen(argv[4 + i], "wb");
			if (!f || fwrite(b, 1, n, f) != (size_t)n || fclose(f)) {
				perror(argv[4 + i]);
				return 1;
			}
		}
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "run"))
		return run(argv[2], argv[3]);
	fprintf(stderr,
		"usage: %s write PATH VALUE | kpage START END FLAGS_OUT COUNT_OUT |"
		" run SCENARIO DEVICE\n", argv[0]);
	return 2;
}
