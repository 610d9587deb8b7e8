/*
 * insn_count: a QEMU TCG plugin that counts executed guest instructions, with markers.
 *
 * Debian ships neither QEMU's plugins nor <qemu-plugin.h>, so the few declarations this
 * plugin uses are written out below. They are the QEMU plugin API version 1 (QEMU 4.2 to
 * 8.0; bookworm's qemu-user is 7.2). QEMU refuses a plugin whose version it does not
 * support, so a mismatch fails loudly at load time rather than miscounting.
 *
 * Counting: every translation block adds its instruction count to one counter when it
 * starts executing (inline, no callback). Guest system calls end a block, so the count
 * is exact at each system call.
 *
 * Markers: the guest calls lseek(-1, MARKER_MAGIC | id, SEEK_SET) (harmless: EBADF). The
 * plugin sees the system call and writes "marker <id> <count>" to the output file. The
 * cost of the code between two markers is the difference of their counts.
 *
 * Usage: qemu-aarch64 -plugin insn_count.so,out=/path/counts.txt ...
 * Output lines: "marker <id> <count>" ..., then "exit <count> vcpus <n>".
 * The counter is shared by all guest threads and not atomic: only single-threaded runs
 * (which is what the device tests use, and what "vcpus 1" confirms) are exact.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API v1: the declarations this plugin needs ---- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_VERSION 1
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_simple_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                              int64_t num, uint64_t a1, uint64_t a2,
                                              uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);
/* ---- end of API declarations ---- */

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define SYS_LSEEK_AARCH64 62
#define MARKER_MAGIC 0x4d420000u
#define MARKER_MASK 0xffff0000u

static uint64_t insn_count;
static unsigned int vcpus;
static FILE *out;

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                       uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu_index; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (num == SYS_LSEEK_AARCH64 && (int32_t)a1 == -1 && (a2 & MARKER_MASK) == MARKER_MAGIC) {
        fprintf(out, "marker %u %" PRIu64 "\n", (unsigned)(a2 & ~MARKER_MASK), insn_count);
        fflush(out);
    }
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id; (void)vcpu_index;
    __atomic_add_fetch(&vcpus, 1, __ATOMIC_SEQ_CST);
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id; (void)userdata;
    fprintf(out, "exit %" PRIu64 " vcpus %u\n", insn_count, vcpus);
    if (out != stderr)
        fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *path = NULL;
    if (info->system_emulation) {
        qemu_plugin_outs("insn_count: only user-mode emulation is supported\n");
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            path = argv[i] + 4;
        } else {
            qemu_plugin_outs("insn_count: unknown argument (expected out=PATH)\n");
            return -1;
        }
    }
    out = path ? fopen(path, "w") : stderr;
    if (!out) {
        qemu_plugin_outs("insn_count: cannot open the output file\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
