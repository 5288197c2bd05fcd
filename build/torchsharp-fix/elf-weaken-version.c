/* Marks one version requirement (e.g. GLIBCXX_3.4.32) in an ELF64 file's .gnu.version_r
 * section as weak (VER_FLG_WEAK), so the dynamic loader accepts a libstdc++ that lacks it.
 * Usage: elf-weaken-version FILE VERSION
 * Exit 0 when the entry is now weak (already weak counts), 3 when the file has no such entry. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *file, const char *what) {
    fprintf(stderr, "elf-weaken-version: %s: %s\n", file, what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: elf-weaken-version FILE VERSION\n"); return 2; }
    const char *file = argv[1], *version = argv[2];
    FILE *f = fopen(file, "r+b");
    if (!f) return fail(file, "cannot open");
    if (fseek(f, 0, SEEK_END) != 0) return fail(file, "cannot seek");
    long size = ftell(f);
    rewind(f);
    unsigned char *buf = malloc((size_t)size);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) return fail(file, "cannot read");

    Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
    if (size < (long)sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
        return fail(file, "not an ELF64 file");
    if (eh->e_shoff + (Elf64_Off)eh->e_shnum * sizeof(Elf64_Shdr) > (Elf64_Off)size)
        return fail(file, "section headers out of range");
    Elf64_Shdr *sh = (Elf64_Shdr *)(buf + eh->e_shoff);

    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_GNU_verneed) continue;
        Elf64_Shdr *strtab = &sh[sh[i].sh_link];           /* .dynstr holds the version names */
        Elf64_Off off = sh[i].sh_offset;
        for (Elf64_Word n = 0; n < sh[i].sh_info; n++) {   /* sh_info = number of Verneed entries */
            Elf64_Verneed *vn = (Elf64_Verneed *)(buf + off);
            Elf64_Off aoff = off + vn->vn_aux;
            for (Elf64_Half a = 0; a < vn->vn_cnt; a++) {
                Elf64_Vernaux *va = (Elf64_Vernaux *)(buf + aoff);
                const char *name = (const char *)(buf + strtab->sh_offset + va->vna_name);
                if (strcmp(name, version) == 0) {
                    va->vna_flags |= VER_FLG_WEAK;
                    if (fseek(f, (long)aoff, SEEK_SET) != 0 || fwrite(va, sizeof *va, 1, f) != 1)
                        return fail(file, "cannot write");
                    fclose(f);
                    return 0;
                }
                aoff += va->vna_next;
            }
            off += vn->vn_next;
        }
    }
    fclose(f);
    return 3;
}
