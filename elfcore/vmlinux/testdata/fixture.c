/*
 * A tiny stand-in for a vmlinux: the C shapes the kernel's DWARF has that
 * ldx's lookups must get right. Built twice, as DWARF 5 and DWARF 4, by
 * regenerate.sh. The _Static_asserts pin the values vmlinux_test.go
 * expects to what the compiler laid out.
 */
#include <stddef.h>

struct list_head { struct list_head *next, *prev; };

typedef struct { long counter; } atomic64_t;
typedef atomic64_t atomic_long_t;

enum pageflags { PG_locked, PG_referenced, PG_uptodate, PG_dirty, PG_lru, PG_head = 16 };
enum { NR_FREE_PAGES, NR_ZONE_LRU_BASE };

struct page {
	unsigned long flags;
	union {
		struct {
			struct list_head lru;
			void *mapping;
		};
		struct {
			unsigned long compound_head;
			unsigned char compound_dtor;
		};
	};
	int _refcount;
};

struct printk_info {
	unsigned long long seq;
	unsigned short text_len;
	unsigned char facility;
	unsigned char flags:5;
	unsigned char level:3;
	unsigned int caller_id;
};

struct new_utsname { char sysname[65]; char release[65]; };
struct uts_namespace { int pad; struct new_utsname name; };

struct free_area { struct list_head free_list[5]; unsigned long nr_free; };
struct zone { long pad[3]; struct free_area free_area[11]; };

struct opaque; /* declared, never defined */

struct task_struct {
	struct { unsigned int flags; unsigned int cpu; } thread_info;
	volatile long __state;
	const char comm[16];
	struct list_head tasks;
	struct opaque *op;
	unsigned sched_reset_on_fork:1;
	unsigned sched_contributes_to_load:1;
	int flex[];
};

struct pglist_data { int node_id; };
extern struct pglist_data *node_data[];
struct pglist_data *node_data[64];

struct uts_namespace init_uts_ns = { 1, { "Linux", "6.1.0-fixture" } };
const char linux_banner[] = "Linux version 6.1.0-fixture (ldx@fixture) #1 SMP\n";
struct task_struct init_task;
atomic_long_t counter_var;

_Static_assert(sizeof(struct page) == 40, "page");
_Static_assert(offsetof(struct page, compound_dtor) == 16, "compound_dtor");
_Static_assert(offsetof(struct page, mapping) == 24, "mapping");
_Static_assert(offsetof(struct page, _refcount) == 32, "_refcount");
_Static_assert(sizeof(struct printk_info) == 16, "printk_info");
_Static_assert(offsetof(struct uts_namespace, name) == 4, "name");
_Static_assert(offsetof(struct new_utsname, release) == 65, "release");
_Static_assert(sizeof(struct zone) == 24 + 11 * 88, "zone");
_Static_assert(offsetof(struct task_struct, comm) == 16, "comm");
_Static_assert(offsetof(struct task_struct, tasks) == 32, "tasks");
_Static_assert(sizeof(struct task_struct) == 64, "task_struct");

void _stext(void) {}
void _start(void) {}
