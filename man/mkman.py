#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""man/mkman.py - writes a section 3 man page for every public function.

Usage: mkman.py [--version V] [--date YYYY-MM-DD] OUTDIR HEADER...

Reads the public headers and, for every PX_API prototype, writes
OUTDIR/NAME.3 from the comment that documents it, found as follows:

  1. the comment right above the prototype (blank lines may separate them);
     prototypes on consecutive lines form a group that shares that comment;
  2. failing that, a typedef right above the group (blank lines allowed when
     the group's names start with the type's name, as px_cond_init under
     px_cond) and the comment right above that typedef.

A prototype with neither is undocumented: it gets no page and is listed,
with its file and line, in OUTDIR/undocumented.txt, which the man page
coverage test reads. Stale pages in OUTDIR are removed first, so the pages
always match the headers. Exit status: 0, or 2 on bad usage.
"""
import os
import re
import sys
import time


class Item:
    """One top-level piece of a header: comment, prototype, typedef, other."""

    def __init__(self, kind, text, line, blank_before):
        self.kind = kind          # 'comment', 'proto', 'typedef', 'other'
        self.text = text
        self.line = line
        self.blank_before = blank_before  # blank line(s) just above it
        self.name = None          # function or type name


def statement_end(lines, i):
    """Index of the line that ends the statement starting at line i."""
    depth = 0
    j = i
    while j < len(lines):
        code = re.sub(r'/\*.*?\*/', '', lines[j])
        code = code.split('//')[0]
        for ch in code:
            if ch in '({':
                depth += 1
            elif ch in ')}':
                depth -= 1
            elif ch == ';' and depth == 0:
                return j
        j += 1
    return len(lines) - 1


def split_items(lines):
    items = []
    i = 0
    blank = False
    while i < len(lines):
        s = lines[i].strip()
        if not s:
            blank = True
            i += 1
            continue
        if s.startswith('/*'):
            j = i
            while '*/' not in lines[j]:
                j += 1
            items.append(Item('comment', '\n'.join(lines[i:j + 1]), i + 1,
                              blank))
            i = j + 1
        elif s.startswith('#'):
            j = i
            while lines[j].rstrip().endswith('\\') and j + 1 < len(lines):
                j += 1
            items.append(Item('other', '\n'.join(lines[i:j + 1]), i + 1,
                              blank))
            i = j + 1
        elif s.startswith('}') or s.startswith('extern "C"'):
            items.append(Item('other', s, i + 1, blank))
            i += 1
        else:
            j = statement_end(lines, i)
            text = '\n'.join(lines[i:j + 1])
            kind = 'other'
            name = None
            if s.startswith('PX_API'):
                kind = 'proto'
                m = re.search(r'\b(px_\w+)\s*\(', text)
                name = m.group(1) if m else None
            elif s.startswith('typedef'):
                kind = 'typedef'
                m = (re.search(r'\(\s*\*\s*(px_\w+)\s*\)', text) or
                     re.search(r'\b(px_\w+)\s*;\s*$', text))
                name = m.group(1) if m else None
            items.append(Item(kind, text, i + 1, blank))
            items[-1].name = name
            i = j + 1
        blank = False
    return items


def comment_text(c):
    """The words of a comment, without its frame; paragraphs kept."""
    body = c.strip()
    body = re.sub(r'^/\*+', '', body)
    body = re.sub(r'\*/$', '', body)
    out = []
    for ln in body.split('\n'):
        ln = re.sub(r'^\s*\* ?', '', ln) if ln.lstrip().startswith('*') \
            else ln.strip()
        ln = re.sub(r'-{3,}', '', ln).rstrip()
        if ln.startswith(' ') and not out:
            ln = ln.strip()  # "/* ---- px_lock: ..." section headings
        out.append(ln)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return '\n'.join(out)


def documented_groups(items):
    """Yields (group of proto items, doc comment item or None, typedef)."""
    k = 0
    while k < len(items):
        it = items[k]
        if it.kind != 'proto':
            k += 1
            continue
        group = [it]
        k += 1
        while (k < len(items) and items[k].kind == 'proto' and
               not items[k].blank_before):
            group.append(items[k])
            k += 1
        first = items.index(group[0])
        prev = items[first - 1] if first > 0 else None
        doc = None
        tdef = None
        if prev is not None and prev.kind == 'comment':
            doc = prev
        elif prev is not None and prev.kind == 'typedef' and prev.name:
            related = all(g.name and g.name.startswith(prev.name + '_')
                          for g in group)
            if not group[0].blank_before or related:
                above = items[first - 2] if first > 1 else None
                if (above is not None and above.kind == 'comment' and
                        not prev.blank_before):
                    doc = above
                    tdef = prev
        yield group, doc, tdef


def roff_escape(text):
    text = text.replace('\\', '\\e').replace('-', '\\-')
    out = []
    for ln in text.split('\n'):
        if ln.startswith('.') or ln.startswith("'"):
            ln = '\\&' + ln
        out.append(ln)
    return '\n'.join(out)


def first_sentence(doc):
    para = doc.split('\n\n')[0].replace('\n', ' ')
    para = re.sub(r'\s+', ' ', para).strip()
    para = re.sub(r'^px_\w+: ', '', para)  # a section heading's type name
    m = re.match(r'(.*?\.)(\s|$)', para)
    s = m.group(1) if m and len(m.group(1)) < len(para) else para
    return s.rstrip('.')


def description(doc):
    """Roff for the comment: paragraphs, indented lines kept as they are."""
    out = []
    for para in re.split(r'\n\s*\n', doc):
        lines = para.split('\n')
        if out:
            out.append('.PP')
        literal = False
        for ln in lines:
            indented = ln.startswith('  ')
            if indented and not literal:
                out.append('.nf')
                literal = True
            elif not indented and literal:
                out.append('.fi')
                literal = False
            out.append(roff_escape(ln) if ln.strip() else '')
        if literal:
            out.append('.fi')
    return '\n'.join(x for x in out if x != '')


def tidy(code):
    """Declarations as one reads them: tabs to spaces, no PX_API."""
    lines = code.expandtabs(8).split('\n')
    if lines[0].startswith('PX_API '):
        lines[0] = lines[0][len('PX_API '):]
        lines[1:] = [ln[7:] if ln.startswith(' ' * 7) else ln
                     for ln in lines[1:]]
    return '\n'.join(lines)


def write_page(outdir, name, header, group, doc, tdef, types, all_funcs,
               version, date):
    docs = comment_text(doc.text)
    syn = ['.nf', '.B #include <parex/%s>' % header, '']
    wanted = []
    if tdef is not None:
        wanted.append(tdef.name)
    for g in group:
        for t in re.findall(r'\bpx_\w+', g.text):
            if t in types and t not in wanted:
                wanted.append(t)
    for t in wanted:
        syn.append(roff_escape(tidy(types[t])))
        syn.append('')
    for g in group:
        syn.append(roff_escape(tidy(g.text)))
    syn.append('.fi')
    seealso = []
    for ref in re.findall(r'\b(px_\w+)\(\)', docs):
        if ref in all_funcs and ref != name and ref not in seealso:
            seealso.append(ref)
    for g in group:
        if g.name != name and g.name not in seealso:
            seealso.append(g.name)
    see = ['.BR %s (3),' % s for s in seealso] + ['.BR parex (7)']
    page = [
        '.\\" SPDX-License-Identifier: MIT',
        '.\\" Generated from include/parex/%s by man/mkman.py.' % header,
        '.TH %s 3 %s "parex %s" "parex Manual"' % (
            name.upper().replace('_', '\\_'), date, version),
        '.SH NAME',
        '%s \\- %s' % (roff_escape(name), roff_escape(first_sentence(docs))),
        '.SH LIBRARY',
        'parex (libparex, \\-lparex)',
        '.SH SYNOPSIS',
        '\n'.join(syn),
        '.SH DESCRIPTION',
        description(docs),
    ]
    if any(re.match(r'PX_API\s+int\s', g.text) for g in group):
        page += [
            '.SH ERRORS',
            'Errors are returned as negative errno values or as parex\'s own',
            'codes (PX_E*), which',
            '.BR px_strerror (3)',
            'names; parex never sets',
            '.IR errno .',
        ]
    page += [
        '.SH SEE ALSO',
        '\n'.join(see),
        '',
    ]
    with open(os.path.join(outdir, name + '.3'), 'w') as f:
        f.write('\n'.join(page))


def main(argv):
    version = ''
    date = ''
    while len(argv) > 2 and argv[1] in ('--version', '--date'):
        if argv[1] == '--version':
            version = argv[2]
        else:
            date = argv[2]
        argv = [argv[0]] + argv[3:]
    if not date:
        stamp = int(os.environ.get('SOURCE_DATE_EPOCH', time.time()))
        date = time.strftime('%Y-%m-%d', time.gmtime(stamp))
    date = '"%s"' % date
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    outdir = argv[1]
    headers = sorted(argv[2:])
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):
        if old.endswith('.3'):
            os.remove(os.path.join(outdir, old))

    parsed = []
    types = {}
    all_funcs = set()
    for path in headers:
        with open(path) as f:
            items = split_items(f.read().split('\n'))
        parsed.append((path, items))
        for it in items:
            if it.kind == 'typedef' and it.name:
                types[it.name] = it.text
            if it.kind == 'proto' and it.name:
                all_funcs.add(it.name)

    undocumented = []
    pages = 0
    for path, items in parsed:
        header = os.path.basename(path)
        for group, doc, tdef in documented_groups(items):
            for g in group:
                if not g.name:
                    continue
                if doc is None:
                    undocumented.append('%s %s:%d' % (g.name, path, g.line))
                    continue
                write_page(outdir, g.name, header, group, doc, tdef, types,
                           all_funcs, version, date)
                pages += 1
    with open(os.path.join(outdir, 'undocumented.txt'), 'w') as f:
        f.write(''.join(u + '\n' for u in undocumented))
    for u in undocumented:
        sys.stderr.write('mkman.py: no comment documents %s\n' % u)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
