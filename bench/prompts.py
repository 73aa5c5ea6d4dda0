"""Deterministic prompts: short chat turns for the load sweep, long ones for prefill, and the
chat loads' system prompts, follow-up questions and pasted text.

Every request carries a unique system message at the very start, so no server can reuse a
cached prefix from an earlier request and every prompt is really prefilled; the chat loads
share a prefix only where the load means it to (one conversation's turns, one shared prompt).
"""

from __future__ import annotations

import random
from pathlib import Path

TOPICS = [
    "a lighthouse keeper who finds a map",
    "the first day of a new school year",
    "a robot learning to bake bread",
    "a storm over a mountain village",
    "two friends building a boat",
    "a library that opens only at night",
    "a cat who runs a small hotel",
    "the last train of the evening",
    "a garden on the roof of a factory",
    "an astronaut writing letters home",
    "a market day in an old harbour town",
    "a chess game that lasts a year",
    "a musician who loses her voice",
    "a bridge that sings in the wind",
    "a fox and a crow sharing a secret",
    "a clockmaker's apprentice",
    "a village that forgets one word each day",
    "a detective who cannot see colours",
    "a whale that follows a ship",
    "a baker's recipe book found in an attic",
    "a winter without snow",
    "a kite that will not come down",
    "a painter who paints only doors",
    "an island with one tree",
    "a postman on his final round",
    "a child who counts the stars",
    "a river that changes direction",
    "a tailor sewing a coat for a giant",
    "a mountain guide's hardest climb",
    "a city where it is always noon",
    "a beekeeper and a lost queen",
    "a ship in a bottle that comes alive",
]

# Plain words, so that prompt length in tokens is close to proportional to word count.
WORDS = [
    "time",
    "year",
    "people",
    "way",
    "day",
    "man",
    "thing",
    "woman",
    "life",
    "child",
    "world",
    "school",
    "state",
    "family",
    "student",
    "group",
    "country",
    "problem",
    "hand",
    "part",
    "place",
    "case",
    "week",
    "company",
    "system",
    "program",
    "question",
    "work",
    "government",
    "number",
    "night",
    "point",
    "home",
    "water",
    "room",
    "mother",
    "area",
    "money",
    "story",
    "fact",
    "month",
    "lot",
    "right",
    "study",
    "book",
    "eye",
    "job",
    "word",
    "business",
    "issue",
    "side",
    "kind",
    "head",
    "house",
    "service",
    "friend",
    "father",
    "power",
    "hour",
    "game",
    "line",
    "end",
    "member",
    "law",
    "car",
    "city",
    "community",
    "name",
    "president",
    "team",
    "minute",
    "idea",
    "kid",
    "body",
    "information",
    "back",
    "parent",
    "face",
    "others",
    "level",
    "office",
    "door",
    "health",
    "person",
    "art",
    "war",
    "history",
    "party",
    "result",
    "change",
    "morning",
    "reason",
    "research",
    "girl",
    "guy",
    "moment",
    "air",
    "teacher",
    "force",
    "education",
    "foot",
    "boy",
    "age",
    "policy",
    "music",
    "river",
    "garden",
    "window",
    "market",
    "village",
    "bread",
    "winter",
]


def chat_prompt(tag: str, index: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": f"Session {tag}-{index}. You are a helpful storyteller."},
        {"role": "user", "content": f"Write a long story about {TOPICS[index % len(TOPICS)]}."},
    ]


def load_prompts(tag: str, count: int) -> list[list[dict[str, str]]]:
    return [chat_prompt(tag, i) for i in range(count)]


# A conversation's user turns after the first: short follow-ups, as a chat page's user types.
FOLLOW_UPS = [
    "Who is the main character?",
    "What happens next?",
    "Describe the place in one sentence.",
    "Give the story a title.",
    "What is the lesson of the story?",
    "Retell the start for a child.",
    "End the story in two sentences.",
]


def user_turn(index: int, turn: int) -> str:
    """Turn `turn` (0-based) of conversation `index`."""
    if turn == 0:
        return f"Tell me a short story about {TOPICS[index % len(TOPICS)]}."
    return FOLLOW_UPS[(turn - 1) % len(FOLLOW_UPS)]


class LongPrompts:
    """User turns of a chosen length in tokens, counted with the model's own tokenizer."""

    def __init__(self, model_dir: Path) -> None:
        # Imported here: the report imports this module's neighbours and needs no transformers.
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def chat_tokens(self, messages: list[dict[str, str]]) -> int:
        """The prompt's length as a server applying the model's chat template sees it."""
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        return len(ids["input_ids"])

    def text(self, seed: str, tokens: int) -> str:
        """Plain words, `tokens` tokens long."""
        rng = random.Random(seed)
        words: list[str] = []
        while True:
            words.extend(rng.choice(WORDS) for _ in range(64))
            ids = self.tokenizer.encode(" ".join(words), add_special_tokens=False)
            if len(ids) >= tokens:
                return str(self.tokenizer.decode(ids[:tokens]))

    def make(self, tag: str, target_tokens: int) -> list[dict[str, str]]:
        # The chat template adds role markers and the system line (~20 tokens); the user text
        # takes the rest so the whole prompt lands near the target.
        system = f"Session {tag}. Summarise the text."
        budget = max(8, target_tokens - self.count(system) - 12)
        text = self.text(f"{tag}-{target_tokens}", budget)
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    def system_prompt(self, tag: str, tokens: int) -> str:
        """A system prompt of about `tokens` tokens, unique to `tag`: instructions, then notes."""
        head = f"Session {tag}. You are a helpful storyteller. Keep answers short. Notes:"
        return f"{head} {self.text(tag, max(8, tokens - self.count(head)))}"

    def shared_prefix(self, first: list[dict[str, str]], second: list[dict[str, str]]) -> int:
        """How many leading prompt tokens two chats share once templated: what a prefix cache
        can reuse between them."""
        a, b = (
            self.tokenizer.apply_chat_template(m, add_generation_prompt=True, return_dict=True)["input_ids"]
            for m in (first, second)
        )
        return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
