# ruff: noqa: E501  (markup templates read best on one line)
"""Deterministic synthetic pages with about 100, 1,000 and 10,000 DOM elements, for the
observation benchmarks (bench/roundtrip.py serves them; the same seed gives the same page).

Mixture: nav links, buttons, text inputs, checkboxes/radios, selects (with options), textareas,
tables with rows (links + buttons in cells), paragraphs with inline links, nested divs,
clickable divs (onclick / role=button / tabindex), hidden elements (display:none,
visibility:hidden, [hidden], input type=hidden, aria-hidden) and a few off-screen elements.
The page is long (content continues far below the first viewport).

Usage: python bench/pages.py OUT_DIR  -> OUT_DIR/synth_{100,1000,10000}.html
"""
import random
import re
from pathlib import Path

WORDS = ('alpha beta gamma delta order invoice customer account search filter report shipping '
         'payment review update profile settings message inbox flight hotel price total status '
         'pending active archived export import details summary quarterly monthly region north '
         'south east west product catalog item quantity discount coupon address city country').split()


def words(rng, n):
    return ' '.join(rng.choice(WORDS) for _ in range(n))


def count_tags(s):
    return len(re.findall(r'<[a-zA-Z]', s))


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.uid = 0

    def nid(self, p):
        self.uid += 1
        return f'{p}{self.uid}'

    # ---- blocks -------------------------------------------------------------
    def card(self):
        r = self.rng
        return (f'<div class="card"><div class="card-body"><h3>{words(r, 3).title()}</h3>'
                f'<p>{words(r, 14)} <a href="/item/{self.nid("i")}">{words(r, 2)}</a> {words(r, 8)}.</p>'
                f'<button type="button" class="btn">{words(r, 1).title()}</button></div></div>')

    def form(self):
        r = self.rng
        a, b, c, d = (self.nid('f') for _ in range(4))
        opts = ''.join(f'<option value="{k}">{words(r, 2)}</option>' for k in range(r.randint(3, 6)))
        return (f'<form class="form" action="/submit" onsubmit="return false">'
                f'<div class="row"><label for="{a}">{words(r, 2).title()}</label>'
                f'<input id="{a}" name="{a}" type="text" placeholder="{words(r, 2)}"></div>'
                f'<div class="row"><label for="{b}">Email</label><input id="{b}" name="{b}" type="email"></div>'
                f'<div class="row"><label for="{c}">{words(r, 1).title()}</label><select id="{c}" name="{c}">{opts}</select></div>'
                f'<div class="row"><label><input type="checkbox" name="{d}"> {words(r, 3)}</label>'
                f'<label><input type="radio" name="r{d}" value="1"> yes</label><label><input type="radio" name="r{d}" value="0"> no</label></div>'
                f'<input type="hidden" name="csrf" value="{self.nid("t")}">'
                f'<button type="submit">Submit</button></form>')

    def table(self, rows):
        r = self.rng
        body = ''.join(
            f'<tr><td>{self.nid("#")}</td><td>{words(r, 3)}</td><td>${r.randint(1, 999)}.00</td>'
            f'<td><a href="/row/{self.uid}">view</a></td><td><button type="button">Edit</button></td></tr>'
            for _ in range(rows))
        return ('<table class="data"><thead><tr><th>ID</th><th>Name</th><th>Price</th><th>Link</th><th>Action</th></tr></thead>'
                f'<tbody>{body}</tbody></table>')

    def paragraphs(self):
        r = self.rng
        return ''.join(f'<p>{words(r, r.randint(15, 40))}.</p>' for _ in range(r.randint(2, 4)))

    def nested(self):
        r = self.rng
        depth = r.randint(3, 6)
        inner = f'<span>{words(r, 5)}</span>'
        if r.random() < 0.5:
            inner += f'<div class="clickable" onclick="void 0" style="cursor:pointer">{words(r, 2)}</div>'
        else:
            inner += f'<div role="button" tabindex="0">{words(r, 2)}</div>'
        return '<div class="wrap">' * depth + inner + '</div>' * depth

    def hidden(self):
        r = self.rng
        k = r.randrange(4)
        if k == 0:
            return f'<div style="display:none"><button type="button">{words(r, 2)}</button><a href="/h">{words(r, 2)}</a></div>'
        if k == 1:
            return f'<div style="visibility:hidden"><input type="text" placeholder="{words(r, 2)}"><a href="/h2">{words(r, 1)}</a></div>'
        if k == 2:
            return f'<div hidden><p>{words(r, 6)}</p><button>{words(r, 1)}</button></div>'
        return f'<div aria-hidden="true" class="decor"><span>{words(r, 3)}</span></div>'

    def offscreen(self):
        r = self.rng
        return (f'<div style="position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden">'
                f'<a href="/skip/{self.nid("s")}">{words(r, 3)}</a></div>')

    def misc_inputs(self):
        r = self.rng
        a = self.nid('m')
        return (f'<fieldset><legend>{words(r, 2)}</legend><textarea name="{a}" rows="2" placeholder="{words(r, 3)}"></textarea>'
                f'<input type="number" min="0" max="10" value="{r.randint(0, 10)}"><input type="date">'
                f'<input type="search" placeholder="search"></fieldset>')

    def page(self, target):
        r = self.rng
        head = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Synthetic page ~%d elements</title>'
                '<style>body{font-family:sans-serif;margin:0}header,footer{background:#eee;padding:8px}'
                '.card{border:1px solid #ccc;margin:6px;padding:6px;display:inline-block;width:280px;vertical-align:top}'
                'table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px}'
                '.row{margin:4px 0}main{padding:8px}.wrap{padding-left:2px}</style></head><body>') % target
        nav = ('<header><nav>' + ''.join(f'<a href="/nav/{k}">{words(r, 1).title()}</a> ' for k in range(6))
               + '<input type="search" placeholder="Search site"><button type="button">Go</button></nav></header><main>')
        tail = ('</main><footer>' + ''.join(f'<a href="/foot/{k}">{words(r, 1)}</a> ' for k in range(4))
                + '<p>&copy; synthetic</p></footer></body></html>')
        parts = [head, nav]
        n = count_tags(head) + count_tags(nav) + count_tags(tail)
        # always include one of each special kind so small pages have them too
        seq = ['form', 'hidden', 'offscreen', 'table', 'card', 'nested', 'paragraphs']
        weights = {'card': 5, 'form': 2, 'table': 2, 'paragraphs': 3, 'nested': 4, 'hidden': 1.5,
                   'offscreen': 0.3, 'misc_inputs': 1}
        kinds = list(weights)
        i = 0
        while True:
            kind = seq[i] if i < len(seq) else r.choices(kinds, weights=[weights[k] for k in kinds])[0]
            i += 1
            if kind == 'table':
                blk = self.table(3 if target <= 100 else r.randint(5, 25))
            else:
                blk = getattr(self, kind)()
            c = count_tags(blk)
            if n + c > target * 1.02 and n > target * 0.9:
                break
            parts.append(blk)
            n += c
            if n >= target:
                break
        parts.append(tail)
        return ''.join(parts), n


SIZES = (100, 1000, 10000)


def write_pages(out: Path) -> list[Path]:
    """Write synth_{100,1000,10000}.html into `out` (created if needed); their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for target in SIZES:
        html, _ = Gen(seed=target).page(target)
        path = out / f"synth_{target}.html"
        path.write_text(html)
        paths.append(path)
    return paths


if __name__ == "__main__":
    import sys
    for written in write_pages(Path(sys.argv[1] if len(sys.argv) > 1 else "synth")):
        print(f"{written}: {written.stat().st_size} bytes")
