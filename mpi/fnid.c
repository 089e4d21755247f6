/*
 * mpi/fnid.c - a function's identity across ranks: the ELF build-id of the
 * module that holds it and its offset from that module's load address.
 * Raw pointers differ in every rank (PIE, ASLR, shared libraries); the pair
 * does not, and a rank that lacks the module (another binary, another
 * version) finds no match instead of calling a random address.
 *
 * Called only from the px-mpi thread of each rank, so the one-entry caches
 * below need no lock.
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "mpi_internal.h"

#define ALIGN4(x) (((x) + 3u) & ~(size_t)3u)

/* Copies the module's NT_GNU_BUILD_ID into id; returns its length, 0 if none. */
static size_t module_build_id(const struct dl_phdr_info *info, uint8_t *id)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const unsigned char *p =
			(const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		size_t left = ph->p_memsz;
		while (left >= sizeof(ElfW(Nhdr))) {
			ElfW(Nhdr) nh;
			memcpy(&nh, p, sizeof(nh));
			size_t need = sizeof(nh) + ALIGN4(nh.n_namesz) +
				      ALIGN4(nh.n_descsz);
			if (need > left)
				break;
			const char *name = (const char *)p + sizeof(nh);
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp(name, "GNU", 4) && nh.n_descsz > 0) {
				size_t n = nh.n_descsz < PX__MPI_ID_MAX
					? nh.n_descsz : PX__MPI_ID_MAX;
				memcpy(id, p + sizeof(nh) + ALIGN4(nh.n_namesz), n);
				return n;
			}
			p += need;
			left -= need;
		}
	}
	return 0;
}

struct find_addr {
	uintptr_t addr;
	struct px__mpi_fnid *out;
	uintptr_t lo, hi, bias;
	int found; /* 1: module found, with id; -1: found, no build-id */
};

static int find_addr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct find_addr *fa = arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		uintptr_t hi = lo + ph->p_memsz;
		if (fa->addr < lo || fa->addr >= hi)
			continue;
		uint8_t n = (uint8_t)module_build_id(info, fa->out->id);
		fa->out->id_len = n;
		fa->found = n ? 1 : -1;
		fa->lo = lo;
		fa->hi = hi;
		fa->bias = info->dlpi_addr;
		return 1;
	}
	return 0;
}

int px__mpi_fn_encode(const void *fn, struct px__mpi_fnid *out)
{
	/* The last module an encoded function was found in. */
	static struct px__mpi_fnid c_id;
	static uintptr_t c_lo, c_hi, c_bias;
	uintptr_t addr = (uintptr_t)fn;
	memset(out, 0, sizeof(*out));
	if (c_hi && addr >= c_lo && addr < c_hi) {
		*out = c_id;
		out->off = addr - c_bias;
		return 0;
	}
	struct find_addr fa = { .addr = addr, .out = out };
	dl_iterate_phdr(find_addr_cb, &fa);
	if (fa.found == 0)
		return -EINVAL;
	if (fa.found < 0)
		return -ENOTSUP;
	out->off = addr - fa.bias;
	c_id = *out;
	c_lo = fa.lo;
	c_hi = fa.hi;
	c_bias = fa.bias;
	return 0;
}

struct find_id {
	const struct px__mpi_fnid *want;
	uintptr_t addr, seg_lo, seg_hi; /* seg: offsets of the segment */
	int found; /* 1: module and executable segment; -1: module only */
};

static int find_id_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct find_id *fi = arg;
	uint8_t id[PX__MPI_ID_MAX];
	size_t n = module_build_id(info, id);
	if (n != fi->want->id_len || memcmp(id, fi->want->id, n))
		return 0;
	fi->found = -1;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (fi->want->off >= ph->p_vaddr &&
		    fi->want->off - ph->p_vaddr < ph->p_memsz) {
			fi->addr = info->dlpi_addr + fi->want->off;
			fi->seg_lo = ph->p_vaddr;
			fi->seg_hi = ph->p_vaddr + ph->p_memsz;
			fi->found = 1;
		}
	}
	return 1;
}

int px__mpi_fn_decode(const struct px__mpi_fnid *id, void **fn)
{
	/* The last module a function was found in, by build-id. */
	static struct px__mpi_fnid c_id;
	static uintptr_t c_bias, c_lo, c_hi;
	*fn = NULL;
	if (id->id_len == 0 || id->id_len > PX__MPI_ID_MAX)
		return PX_EVERSION;
	if (c_hi && c_id.id_len == id->id_len &&
	    !memcmp(c_id.id, id->id, id->id_len) && id->off >= c_lo &&
	    id->off < c_hi) {
		*fn = (void *)(c_bias + id->off);
		return 0;
	}
	struct find_id fi = { .want = id };
	dl_iterate_phdr(find_id_cb, &fi);
	if (fi.found == 0)
		return PX_EVERSION;
	if (fi.found < 0)
		return -EINVAL; /* not code of that module */
	c_id = *id;
	c_bias = fi.addr - id->off;
	c_lo = fi.seg_lo;
	c_hi = fi.seg_hi;
	*fn = (void *)fi.addr;
	return 0;
}

static int main_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct px__mpi_fnid *out = arg;
	out->id_len = (uint8_t)module_build_id(info, out->id);
	return 1; /* the first entry is the program */
}

int px__mpi_program_id(struct px__mpi_fnid *out)
{
	memset(out, 0, sizeof(*out));
	dl_iterate_phdr(main_cb, out);
	return out->id_len ? 0 : -ENOTSUP;
}

void px__mpi_id_hex(const struct px__mpi_fnid *id, char *buf, size_t len)
{
	size_t at = 0;
	buf[0] = 0;
	for (size_t i = 0; i < id->id_len && at + 3 <= len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%02x", id->id[i]);
	if (!id->id_len)
		snprintf(buf, len, "(none)");
}
