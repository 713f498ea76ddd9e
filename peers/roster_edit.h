/*
 * roster_edit.h - line-based edits of the roster's INI source (library
 * bg_roster_ini), for 'baygate roster add-member' and 'remove-member'.
 *
 * roster.ini is the operator's file: an edit changes only the lines it must
 * (a section added or taken out, the serial) and keeps every other line,
 * comment and blank as it was. The result is text, not checked here: the
 * caller compiles it (roster_ini.h) before it replaces the file.
 */
#ifndef BG_ROSTER_EDIT_H
#define BG_ROSTER_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* A new [member] section's values, as they will be written (certificate relative to
 * the roster source's directory, or absolute). lists may be "" (offers none). */
typedef struct bg_roster_new_member {
    const char *city, *name, *endpoint, *certificate, *lists, *scale, *grade_map;
} bg_roster_new_member;

/*
 * text[0..len) with a [member] section for nm after the last [member] section (at
 * the end if there is none) and [federation] serial one higher (*serial: the new
 * one). *out is malloc'd and NUL-terminated. BG_EEXIST if nm->city has a [member]
 * section already; BG_EINVAL for a value that cannot stand on one line of the
 * source (empty, a line break or control character, ';' or '#', blanks at either
 * end) or a source without a serial to raise.
 */
int bg_roster_edit_add_member(const char *text, size_t len, const bg_roster_new_member *nm,
                              char **out, size_t *out_len, uint64_t *serial, bg_err *err);

/*
 * text[0..len) without the [member city] section and every [permission] section
 * that names city on either side (A -> city, city -> B, city -> *, * -> city), with
 * [federation] serial one higher. *removed gets the number of sections taken out.
 * A section goes from its header through its last key or continuation line; the
 * comments and blank lines around it stay. BG_ENOTFOUND if city has no [member]
 * section.
 */
int bg_roster_edit_remove_member(const char *text, size_t len, const char *city, char **out,
                                 size_t *out_len, size_t *removed, uint64_t *serial, bg_err *err);

#endif
