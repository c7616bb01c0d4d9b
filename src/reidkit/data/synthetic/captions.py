"""The caption grammar: English descriptions of a person built only from what is visible in one view, with
varied templates, synonyms and item order, so captions of one identity differ as in CUHK-PEDES."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reidkit.data.synthetic.attributes import PersonAttributes, visible_attributes

_NOUNS = {
    "man": ("man", "guy", "young man", "male pedestrian", "gentleman"),
    "woman": ("woman", "lady", "young woman", "female pedestrian", "girl"),
}
_COLOR_WORDS = {"grey": ("grey", "gray"), "blonde": ("blonde", "blond", "fair")}
_TOP_WORDS = {
    "t-shirt": ("t-shirt", "tee", "short-sleeved shirt"),
    "long-sleeve": ("long-sleeved shirt", "long-sleeve top", "sweater"),
    "jacket": ("jacket", "zip-up jacket"),
    "coat": ("coat", "long coat", "overcoat"),
}
_BOTTOM_WORDS = {
    "trousers": ("trousers", "pants", "slacks", "long pants"),
    "shorts": ("shorts", "short pants"),
    "skirt": ("skirt", "knee-length skirt"),
}
_PLURAL_BOTTOMS = frozenset({"trousers", "shorts"})
_SHOE_WORDS = ("shoes", "sneakers", "trainers")
_HAT_WORDS = {"cap": ("cap", "baseball cap"), "beanie": ("beanie", "knit hat", "woolly hat")}
# Phrases per item; {c} colour, {p} possessive pronoun.
_BAG_PHRASES = {
    "backpack": ("a {c} backpack", "a {c} rucksack", "a {c} backpack on {p} back"),
    "bag": ("a bag", "some kind of bag", "a bag with straps over {p} shoulders"),
    "shoulder bag": ("a {c} shoulder bag", "a {c} messenger bag", "a {c} bag over {p} shoulder"),
    "handbag": ("a {c} handbag", "a {c} purse", "a small {c} bag in {p} hand"),
}
_HAIR_PHRASES = {
    "short": ("short {c} hair", "{c} hair cut short", "a short {c} haircut"),
    "long": ("long {c} hair", "{c} hair down to the shoulders", "long flowing {c} hair"),
    "ponytail": ("{c} hair in a ponytail", "a {c} ponytail"),
    "bald": ("a bald head", "a shaved head"),
    None: ("{c} hair",),
}
_PATTERN_PHRASES = {
    "stripes": ("{a} {c} {w} with {pc} stripes", "{a} striped {c} {w}", "{a} {c} and {pc} striped {w}"),
    "checks": ("{a} {c} {w} with a {pc} check pattern", "{a} checked {c} {w}", "{a} plaid {c} and {pc} {w}"),
    "logo": (
        "{a} {c} {w} with a {pc} logo on the front",
        "{a} {c} {w} with a printed {pc} logo on the chest",
        "{a} {c} {w} with a {pc} graphic print on the front",
    ),
    None: ("{a} {c} {w}",),
}
NUM_TEMPLATES = 6


def _choose(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _color(rng: np.random.Generator, name: str) -> str:
    return _choose(rng, _COLOR_WORDS.get(name, (name,)))


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def caption(
    attrs: PersonAttributes, view: str, rng: np.random.Generator, *, template: int | None = None
) -> str:
    """One English description built only from `visible_attributes(attrs, view)`, with a random template
    (or the given one, 0..NUM_TEMPLATES-1), synonyms and item order."""
    if template is None:
        template = int(rng.integers(NUM_TEMPLATES))
    if not 0 <= template < NUM_TEMPLATES:
        raise ValueError(f"template={template}: expected 0..{NUM_TEMPLATES - 1}")
    v = visible_attributes(attrs, view)
    man = v["gender"] == "man"
    noun = _choose(rng, _NOUNS["man" if man else "woman"])
    pron, poss = ("he", "his") if man else ("she", "her")

    hair = None
    if v["hair_style"] is not None or v["hair_color"] is not None:
        c = _color(rng, v["hair_color"]) if v["hair_color"] else ""
        hair = _choose(rng, _HAIR_PHRASES[v["hair_style"]]).format(c=c)
    c = _color(rng, v["top_color"])
    pc = _color(rng, v["pattern_color"]) if v["pattern_color"] else ""
    form = _choose(rng, _PATTERN_PHRASES[v["top_pattern"]])
    first = form.split(" ", 2)[1].format(c=c)  # the word after the article decides "a" / "an"
    top = form.format(a=_article(first), c=c, pc=pc, w=_choose(rng, _TOP_WORDS[v["top_type"]]))
    bw = _choose(rng, _BOTTOM_WORDS[v["bottom_type"]])
    bottom = f"{_color(rng, v['bottom_color'])} {bw}"
    if v["bottom_type"] not in _PLURAL_BOTTOMS:
        bottom = f"a {bottom}"
    shoes = f"{_color(rng, v['shoe_color'])} {_choose(rng, _SHOE_WORDS)}"
    if rng.random() < 0.3:
        shoes = f"a pair of {shoes}"
    items = [top, bottom, shoes]
    extra: list[str] = []
    if v["hat"] is not None:
        hat = f"a {_color(rng, v['hat_color'])} {_choose(rng, _HAT_WORDS[v['hat']])}"
        if rng.random() < 0.5:
            items.append(hat)
        else:
            extra.append(
                _choose(rng, ("{P} wears {h}.", "{P} has {h} on {p} head.", "On {p} head is {h}.")).format(
                    P=_sentence(pron), h=hat, p=poss
                )
            )
    if v["bag"] is not None:
        bag = _choose(rng, _BAG_PHRASES[v["bag"]]).format(c=_color(rng, v["bag_color"] or ""), p=poss)
        verb = _choose(rng, ("carries", "is carrying", "has"))
        extra.append(f"{_sentence(pron)} {verb} {bag}.")
    order = rng.permutation(len(items))
    listed = _join([items[i] for i in order])

    if template == 0:
        main = f"A {noun}{' with ' + hair if hair else ''} wearing {listed}."
    elif template == 1:
        main = f"The {noun} is wearing {listed}{' and has ' + hair if hair else ''}."
    elif template == 2:
        main = (
            f"This {noun} has {hair} and is dressed in {listed}."
            if hair
            else f"This {noun} is dressed in {listed}."
        )
    elif template == 3:
        main = f"Wearing {listed}, {_article(noun)} {noun}{' with ' + hair if hair else ''} walks by."
    elif template == 4:
        main = f"{_sentence(_article(noun))} {noun} dressed in {listed}."
        if hair:
            main += f" {_sentence(pron)} has {hair}."
    else:
        main = f"{_sentence(listed)} are worn by {_article(noun)} {noun}{' who has ' + hair if hair else ''}."
    if len(extra) == 2 and rng.random() < 0.5:
        extra.reverse()
    return " ".join([main, *extra])
