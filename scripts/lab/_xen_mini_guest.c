/*
 * A minimal PVH guest for the Xen lab's stream capture (scripts/lab/
 * _xen_capture.ts): one vCPU in 32-bit protected mode without paging, no
 * interrupts, no Linux. Its whole memory is a few pages of code and data,
 * so the libxc stream of a live migration is small enough to check into
 * the repository (a Linux domU needs ~40 MB of kernel in RAM).
 *
 * What it does, all through Xen's public ABI (xen/include/public/):
 *   - fills its hypercall page (CPUID leaf 0x40000002, then WRMSR);
 *   - reads HVM_PARAM_{CONSOLE,STORE}_{PFN,EVTCHN} (HVMOP_get_param);
 *   - in a loop rewrites DIRTY_PAGES pages (so every pre-copy round has
 *     dirty pages: compressible counter pages, pages with one shared
 *     content, a few pseudo-random ones), prints
 *     "HAKOBU-MINI OK boot=<id> n=<k>" on its PV console now and then, and
 *     every CHECK_EVERY iterations reads xenstore "control/shutdown";
 *   - on "suspend" (what libxl writes to suspend a PV/PVH guest) it
 *     acknowledges by writing "" there and calls
 *     SCHEDOP_shutdown(SHUTDOWN_suspend); when that returns (in the new
 *     domain after a migration) it re-reads the event channels and goes on.
 *
 * Build (32-bit, freestanding, loaded at 1 MiB; PVH needs only the
 * XEN_ELFNOTE_PHYS32_ENTRY note):
 *   gcc -m32 -O2 -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
 *     -mgeneral-regs-only -fno-asynchronous-unwind-tables -nostdlib -static \
 *     -no-pie -Wl,--build-id=none -Wl,-Ttext-segment=0x100000 \
 *     -o mini.elf _xen_mini_guest.c
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define PAGE_SIZE 4096
/* Guest-physical address of the rewritten pages (RAM starts at 0). */
#define DIRTY_BASE 0x400000u
#define DIRTY_PAGES 256
#define CHECK_EVERY 8
#define PRINT_EVERY 64

/* public/xen.h */
#define HYPERVISOR_sched_op 29
#define HYPERVISOR_event_channel_op 32
#define HYPERVISOR_hvm_op 34
#define DOMID_SELF 0x7FF0
/* public/sched.h */
#define SCHEDOP_yield 0
#define SCHEDOP_shutdown 2
#define SHUTDOWN_suspend 2
/* public/event_channel.h */
#define EVTCHNOP_send 4
/* public/hvm/hvm_op.h, public/hvm/params.h */
#define HVMOP_get_param 1
#define HVM_PARAM_STORE_PFN 1
#define HVM_PARAM_STORE_EVTCHN 2
#define HVM_PARAM_CONSOLE_PFN 17
#define HVM_PARAM_CONSOLE_EVTCHN 18
/* public/io/xs_wire.h */
#define XS_READ 2
#define XS_WRITE 11
#define XS_ERROR 16

/* The PVH entry point note (public/elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY 18),
 * the entry (ebx = struct hvm_start_info *), and the stack. */
__asm__(
    ".pushsection .note.Xen, \"a\", @note\n"
    ".balign 4\n"
    ".long 4\n"
    ".long 4\n"
    ".long 18\n"
    ".asciz \"Xen\"\n"
    ".balign 4\n"
    ".long _start\n"
    ".popsection\n"
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  mov $stack_top, %esp\n"
    "  call guest_main\n"
    "1: hlt\n"
    "  jmp 1b\n"
    ".bss\n"
    ".balign 16\n"
    "stack: .skip 16384\n"
    "stack_top:\n"
    ".previous\n");

static u8 hypercall_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

#define barrier() __asm__ volatile("" ::: "memory")

void *memset(void *d, int c, unsigned long n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static long hypercall(u32 nr, u32 a1, u32 a2)
{
    long ret;
    u32 b = a1, c = a2, d, si, di;
    /* 32-bit HVM ABI: arguments in ebx, ecx, ...; the stub loads eax. */
    __asm__ volatile("call *%%eax"
                     : "=a"(ret), "+b"(b), "+c"(c), "=d"(d), "=S"(si),
                       "=D"(di)
                     : "0"(hypercall_page + nr * 32)
                     : "memory");
    return ret;
}

static void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
    __asm__ volatile("cpuid"
                     : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
                     : "0"(leaf), "2"(0));
}

static u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

static void hang(void)
{
    for (;;)
        __asm__ volatile("hlt");
}

static void setup_hypercall_page(void)
{
    u32 base, a, b, c, d;
    for (base = 0x40000000; base < 0x40010000; base += 0x100) {
        cpuid(base, &a, &b, &c, &d);
        /* "XenVMMXenVMM" (public/arch-x86/cpuid.h) */
        if (b == 0x566e6558 && c == 0x65584d4d && d == 0x4d4d566e &&
            a - base >= 2)
            break;
    }
    if (base >= 0x40010000)
        hang();
    cpuid(base + 2, &a, &b, &c, &d);
    /* ebx: the MSR that installs hypercall page 0 at the address written */
    __asm__ volatile("wrmsr" ::"c"(b), "a"((u32)hypercall_page), "d"(0)
                     : "memory");
}

struct xen_hvm_param {
    u16 domid;
    u16 pad;
    u32 index;
    u64 value;
};

static u32 hvm_param(u32 index)
{
    struct xen_hvm_param p = {DOMID_SELF, 0, index, 0};
    if (hypercall(HYPERVISOR_hvm_op, HVMOP_get_param, (u32)&p) != 0)
        hang();
    return (u32)p.value;
}

static void evtchn_send(u32 port)
{
    struct {
        u32 port;
    } s = {port};
    hypercall(HYPERVISOR_event_channel_op, EVTCHNOP_send, (u32)&s);
}

static void yield(void)
{
    hypercall(HYPERVISOR_sched_op, SCHEDOP_yield, 0);
}

/* public/io/console.h */
struct xencons_interface {
    char in[1024];
    char out[2048];
    u32 in_cons, in_prod;
    u32 out_cons, out_prod;
};

/* public/io/xs_wire.h */
struct xenstore_domain_interface {
    char req[1024];
    char rsp[1024];
    u32 req_cons, req_prod;
    u32 rsp_cons, rsp_prod;
};

static volatile struct xencons_interface *cons;
static volatile struct xenstore_domain_interface *store;
static u32 cons_port, store_port, req_id;

static void connect(void)
{
    cons = (void *)(hvm_param(HVM_PARAM_CONSOLE_PFN) * PAGE_SIZE);
    cons_port = hvm_param(HVM_PARAM_CONSOLE_EVTCHN);
    store = (void *)(hvm_param(HVM_PARAM_STORE_PFN) * PAGE_SIZE);
    store_port = hvm_param(HVM_PARAM_STORE_EVTCHN);
}

static void cons_puts(const char *s)
{
    while (*s) {
        u32 prod = cons->out_prod;
        while (prod - cons->out_cons >= sizeof(cons->out)) {
            evtchn_send(cons_port);
            yield();
        }
        cons->out[prod % sizeof(cons->out)] = *s++;
        barrier();
        cons->out_prod = prod + 1;
    }
    evtchn_send(cons_port);
}

static void putu(u32 v)
{
    char buf[12];
    int i = sizeof(buf) - 1;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cons_puts(buf + i);
}

static void putx(u32 v)
{
    char buf[9];
    int i;
    for (i = 7; i >= 0; i--, v >>= 4)
        buf[i] = "0123456789abcdef"[v & 15];
    buf[8] = 0;
    cons_puts(buf);
}

static void xs_write_bytes(const void *data, u32 n)
{
    const u8 *p = data;
    while (n) {
        u32 prod = store->req_prod;
        if (prod - store->req_cons >= sizeof(store->req)) {
            evtchn_send(store_port);
            yield();
            continue;
        }
        store->req[prod % sizeof(store->req)] = (char)*p++;
        barrier();
        store->req_prod = prod + 1;
        n--;
    }
}

static void xs_read_bytes(void *data, u32 n)
{
    u8 *p = data;
    while (n) {
        u32 cons_idx = store->rsp_cons;
        if (store->rsp_prod == cons_idx) {
            yield();
            continue;
        }
        barrier();
        if (p)
            *p++ = (u8)store->rsp[cons_idx % sizeof(store->rsp)];
        barrier();
        store->rsp_cons = cons_idx + 1;
        n--;
    }
    evtchn_send(store_port);
}

/*
 * One xenstore request (struct xsd_sockmsg + path + NUL + value); copies
 * up to max-1 bytes of the answer into out (NUL-terminated) and returns
 * the answer's type.
 */
static u32 xs_request(u32 type, const char *path, const char *value,
                      char *out, u32 max)
{
    u32 plen = 0, vlen = 0, hdr[4], i;
    while (path[plen])
        plen++;
    if (value)
        while (value[vlen])
            vlen++;
    hdr[0] = type;
    hdr[1] = ++req_id;
    hdr[2] = 0;
    hdr[3] = plen + 1 + vlen;
    xs_write_bytes(hdr, sizeof(hdr));
    xs_write_bytes(path, plen + 1);
    xs_write_bytes(value, vlen);
    evtchn_send(store_port);
    xs_read_bytes(hdr, sizeof(hdr));
    for (i = 0; i < hdr[3]; i++) {
        u8 c;
        xs_read_bytes(&c, 1);
        if (i + 1 < max)
            out[i] = (char)c;
    }
    out[i + 1 < max ? i : max - 1] = 0;
    return hdr[0];
}

static int streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static u32 rng = 0x2545f491;

static u32 xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void dirty(u32 n)
{
    u32 i, w;
    for (i = 0; i < DIRTY_PAGES; i++) {
        volatile u32 *p = (u32 *)(DIRTY_BASE + i * PAGE_SIZE);
        for (w = 0; w < PAGE_SIZE / 4; w++) {
            if (i % 64 == 63)
                p[w] = xorshift(); /* 4 pages of noise */
            else if (i % 8 == 7)
                p[w] = n; /* 28 pages with one shared content */
            else
                p[w] = (n << 16) ^ (i << 8) ^ w; /* the rest: counters */
        }
    }
}

static void delay(void)
{
    u64 t0 = rdtsc();
    while (rdtsc() - t0 < 20000000ull)
        __asm__ volatile("pause");
}

static void check_suspend(void)
{
    char state[32];
    long rc;
    struct {
        u32 reason;
    } sh = {SHUTDOWN_suspend};
    if (xs_request(XS_READ, "control/shutdown", 0, state, sizeof(state)) !=
            XS_READ ||
        !streq(state, "suspend"))
        return;
    /* libxl waits for this acknowledgement, then for the shutdown */
    xs_request(XS_WRITE, "control/shutdown", "", state, sizeof(state));
    cons_puts("HAKOBU-MINI suspending\n");
    rc = hypercall(HYPERVISOR_sched_op, SCHEDOP_shutdown, (u32)&sh);
    /* 0: resumed in a new domain (migrated); 1: cancelled, same domain */
    connect();
    cons_puts("HAKOBU-MINI resumed rc=");
    putu((u32)rc);
    cons_puts("\n");
}

void guest_main(void)
{
    u32 n, boot;
    setup_hypercall_page();
    connect();
    boot = (u32)rdtsc() ^ (u32)(rdtsc() >> 32) * 2654435761u;
    rng ^= boot;
    cons_puts("HAKOBU-MINI START\n");
    for (n = 1;; n++) {
        dirty(n);
        if (n % CHECK_EVERY == 0)
            check_suspend();
        if (n % PRINT_EVERY == 0) {
            cons_puts("HAKOBU-MINI OK boot=");
            putx(boot);
            cons_puts(" n=");
            putu(n);
            cons_puts("\n");
        }
        delay();
    }
}
