/*
 * A tiny stand-in for a debug vmlinux with the shapes the task walk reads
 * (6.1's names: __state, thread_info.cpu, thread_node), linked at the
 * kernel's address with a zero-based per-CPU section, as x86_64 SMP
 * kernels are. regenerate.sh builds vmlinux.elf; the _Static_asserts pin
 * the offsets the tests write memory with.
 */
#include <stddef.h>

struct list_head { struct list_head *next, *prev; };
struct thread_info { unsigned long flags; unsigned int status; unsigned int cpu; };
struct signal_struct { int nr_threads; struct list_head thread_head; };

struct task_struct {
	struct thread_info thread_info;
	unsigned int __state;
	void *stack;
	struct list_head tasks;
	int exit_state;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct list_head thread_group;
	struct list_head thread_node;
	struct signal_struct *signal;
	char comm[16];
	char rest[200];
};

struct rq { unsigned int nr_running; struct task_struct *curr; struct task_struct *idle; };
struct cpumask { unsigned long bits[1]; }; /* NR_CPUS = 64 */

struct task_struct init_task;
/* Per-CPU variables: offsets from each CPU's __per_cpu_offset. */
__attribute__((section("pcpu"))) long pcpu_first = 1;
__attribute__((section("pcpu"))) struct rq runqueues = { 1 };
unsigned long __per_cpu_offset[64];
struct cpumask __cpu_online_mask;
const char linux_banner[] = "Linux version 6.1.0-ldx-ps (ldx@test) #1 SMP\n";

void _stext(void) {}
void _start(void) {}

_Static_assert(offsetof(struct task_struct, thread_info.cpu) == 12, "cpu");
_Static_assert(offsetof(struct task_struct, __state) == 16, "__state");
_Static_assert(offsetof(struct task_struct, tasks) == 32, "tasks");
_Static_assert(offsetof(struct task_struct, exit_state) == 48, "exit_state");
_Static_assert(offsetof(struct task_struct, pid) == 52, "pid");
_Static_assert(offsetof(struct task_struct, tgid) == 56, "tgid");
_Static_assert(offsetof(struct task_struct, real_parent) == 64, "real_parent");
_Static_assert(offsetof(struct task_struct, thread_group) == 72, "thread_group");
_Static_assert(offsetof(struct task_struct, thread_node) == 88, "thread_node");
_Static_assert(offsetof(struct task_struct, signal) == 104, "signal");
_Static_assert(offsetof(struct task_struct, comm) == 112, "comm");
_Static_assert(offsetof(struct signal_struct, thread_head) == 8, "thread_head");
_Static_assert(offsetof(struct rq, curr) == 8, "curr");
_Static_assert(offsetof(struct rq, idle) == 16, "idle");
