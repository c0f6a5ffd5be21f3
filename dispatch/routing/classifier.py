"""Understanding requests (智能导办): a text classifier that names the catalogue matter (事项).

Trained on the shipped corpus (``dispatch/reference/corpus``: callers' requests in the
registers they use - spoken, Cantonese-influenced, misspelt, agents' short notes, written
letters) and on the matters people finally chose for tickets (see ``dispatch.routing.training``).

Features: word uni- and bigrams of jieba tokens (with the colloquial lexicon
``dispatch/reference/lexicon.yaml``, whose synonyms add the standard word beside the colloquial
one: 升降机 also says 电梯) and character 1-3-grams of the same expanded text, TF-IDF weighted;
a multinomial logistic regression gives calibrated probabilities. Character n-grams carry
misspellings and words jieba cuts wrongly; words carry the topic when a character is shared by
unrelated words (个 in 有个人 is no 个人所得税).

The corpus keeps a held-out part in its own files (``corpus/heldout``): never trained on, so
``bench/bench_understanding.py`` measures on requests the model has not seen.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import pickle
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from dispatch.routing.suggest import _quiet_jieba, _tokenizer, _tokenizer_lock, normalise

log = logging.getLogger(__name__)

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"
CORPUS_DIR = REFERENCE_DIR / "corpus"
LEXICON_FILE = REFERENCE_DIR / "lexicon.yaml"
SPLITS = ("train", "heldout")
REGISTERS = ("spoken", "cantonese", "typo", "note", "written", "feedback")
# Bumped when the features or the model change, so cached models of an older shape retrain.
MODEL_FORMAT = 1
# A person's final choice outweighs one shipped example: it is what this hotline's callers say.
FEEDBACK_WEIGHT = 5.0


@dataclass(frozen=True, slots=True)
class Example:
    """One request of the corpus: its text, the matter it belongs to, how it was said."""

    text: str
    matter_code: str
    register: str
    split: str


def load_corpus(split: str | None = None, *, corpus_dir: Path = CORPUS_DIR) -> list[Example]:
    """The shipped requests of ``split`` (train or heldout; None: both), in file order.

    The split is the folder a file lies in, so no request moves between them by chance.
    """
    examples: list[Example] = []
    for name in SPLITS if split is None else (split,):
        for path in sorted((corpus_dir / name).glob("*.csv")):
            with path.open(encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    text = (row.get("text") or "").strip()
                    if text:
                        examples.append(
                            Example(text, row["matter_code"].strip(), row["register"].strip(), name)
                        )
    return examples


def corpus_fingerprint(corpus_dir: Path = CORPUS_DIR, lexicon: Path = LEXICON_FILE) -> str:
    """Changes whenever a shipped example, the lexicon or the model's shape changes."""
    digest = hashlib.sha256(f"format {MODEL_FORMAT}".encode())
    for path in [*sorted(corpus_dir.glob("*/*.csv")), lexicon]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Lexicon:
    words: tuple[str, ...]
    # colloquial form -> standard word, longest forms first
    synonyms: tuple[tuple[str, str], ...]


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    data = yaml.safe_load(LEXICON_FILE.read_text(encoding="utf-8")) or {}
    synonyms = {str(k).lower(): str(v) for k, v in (data.get("synonyms") or {}).items()}
    return Lexicon(
        words=tuple(str(w) for w in data.get("words") or ()),
        synonyms=tuple(sorted(synonyms.items(), key=lambda kv: (-len(kv[0]), kv[0]))),
    )


_lexicon_loaded = False


def _word_tokenizer():
    global _lexicon_loaded
    tokenizer = _tokenizer()
    if not _lexicon_loaded:
        with _tokenizer_lock, _quiet_jieba():
            if not _lexicon_loaded:
                for word in lexicon().words:
                    tokenizer.add_word(word)
                for form, standard in lexicon().synonyms:
                    tokenizer.add_word(form)
                    tokenizer.add_word(standard)
                _lexicon_loaded = True
    return tokenizer


def expand(text: str) -> str:
    """The text, lower-cased, followed by the standard word of each colloquial form in it."""
    lowered = text.lower()
    extra = [standard for form, standard in lexicon().synonyms if form in lowered]
    return f"{lowered} {' '.join(extra)}" if extra else lowered


def word_features(text: str) -> list[str]:
    """Word unigrams and bigrams of the expanded text (a module function: models pickle it)."""
    tokens = [t for t in _word_tokenizer().lcut(expand(text)) if any(c.isalnum() for c in t)]
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def build_estimator(kind: str = "logreg"):
    """The feature union and the classifier; ``kind``: logreg (kept) or svm (measured)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(analyzer=word_features, sublinear_tf=True)),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(1, 3),
                    preprocessor=expand,
                    sublinear_tf=True,
                    min_df=2,  # halves the features (and the model) at no cost in accuracy
                ),
            ),
        ]
    )
    if kind == "svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        classifier = CalibratedClassifierCV(LinearSVC(C=0.5), cv=3, method="sigmoid")
    elif kind == "logreg":
        # saga fits the corpus in about a second; lbfgs took 5-25 s for the same accuracy.
        classifier = LogisticRegression(C=10.0, solver="saga", max_iter=300, tol=1e-3)
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return Pipeline([("features", features), ("classifier", classifier)])


@dataclass
class MatterModel:
    """A trained classifier and the texts people decided, ready to rank matters."""

    estimator: Any
    classes: tuple[str, ...]
    # normalised text -> the matter a person finally chose for exactly that text
    memory: dict[str, str] = field(default_factory=dict)
    trained_on: dict[str, int] = field(default_factory=dict)
    kind: str = "logreg"

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every known matter with its probability for ``text``, most likely first."""
        probabilities = self.estimator.predict_proba([text])[0]
        ranked = sorted(zip(self.classes, probabilities, strict=True), key=lambda x: -x[1])
        remembered = self.memory.get(normalise(text))
        if remembered in self.classes:
            # A person decided this very text: that decision comes first, whatever the rest says.
            ranked = [(remembered, max(0.99, dict(ranked)[remembered]))] + [
                (code, p) for code, p in ranked if code != remembered
            ]
        return [(code, float(p)) for code, p in ranked]

    def dumps(self) -> bytes:
        return zlib.compress(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL), 3)

    @staticmethod
    def loads(blob: bytes) -> MatterModel:
        # Only blobs this system wrote itself (the matter_models table, its own data dir).
        model = pickle.loads(zlib.decompress(blob))  # noqa: S301
        if not isinstance(model, MatterModel):
            raise TypeError("not a matter model")
        return model


def train(
    examples: Iterable[Example],
    *,
    feedback: Sequence[tuple[str, str]] = (),
    known_codes: Iterable[str] | None = None,
    kind: str = "logreg",
) -> MatterModel:
    """Fit a model on shipped ``examples`` and people's ``feedback`` (text, final matter).

    Codes outside ``known_codes`` (retired matters) are left out.
    """
    known = set(known_codes) if known_codes is not None else None
    texts: list[str] = []
    labels: list[str] = []
    weights: list[float] = []
    corpus_count = 0
    for example in examples:
        if known is None or example.matter_code in known:
            texts.append(example.text)
            labels.append(example.matter_code)
            weights.append(1.0)
            corpus_count += 1
    memory: dict[str, str] = {}
    for text, code in feedback:
        if (known is None or code in known) and text.strip():
            texts.append(text)
            labels.append(code)
            weights.append(FEEDBACK_WEIGHT)
            memory[normalise(text)] = code  # later choices win: the final matter
    if len(set(labels)) < 2:
        raise ValueError("a model needs examples of at least two matters")
    _word_tokenizer()  # load the lexicon outside the timed fit
    estimator = build_estimator(kind)
    started = time.perf_counter()
    estimator.fit(texts, labels, classifier__sample_weight=weights)
    log.info("matter model trained on %d texts in %.1fs", len(texts), time.perf_counter() - started)
    classes = tuple(str(c) for c in estimator.classes_)
    return MatterModel(
        estimator=estimator,
        classes=classes,
        memory=memory,
        trained_on={"corpus": corpus_count, "feedback": len(feedback), "matters": len(classes)},
        kind=kind,
    )


def limit_per_matter(examples: Iterable[Example], limit: int | None) -> list[Example]:
    """At most ``limit`` examples of each matter, in order (small models for tests)."""
    if limit is None:
        return list(examples)
    seen: dict[str, int] = {}
    kept = []
    for example in examples:
        if seen.get(example.matter_code, 0) < limit:
            seen[example.matter_code] = seen.get(example.matter_code, 0) + 1
            kept.append(example)
    return kept


def evaluate(model: MatterModel, examples: Sequence[Example]) -> dict[str, float]:
    """Top-1 and top-3 accuracy on ``examples`` (the held-out part, by default)."""
    if not examples:
        return {"top1": 0.0, "top3": 0.0, "count": 0}
    top1 = top3 = 0
    for example in examples:
        codes = [code for code, _ in model.rank(example.text)[:3]]
        top1 += codes[:1] == [example.matter_code]
        top3 += example.matter_code in codes
    n = len(examples)
    return {"top1": round(top1 / n, 4), "top3": round(top3 / n, 4), "count": n}


_shipped_lock = threading.Lock()
_shipped: dict[tuple[str, int | None], MatterModel] = {}


def shipped_model(data_dir: Path, *, limit: int | None = None) -> MatterModel:
    """The model of the shipped corpus alone: trained once (seconds), cached in ``data_dir``
    and in the process, so a fresh install suggests with nothing but the package."""
    key = (corpus_fingerprint(), limit)
    with _shipped_lock:
        model = _shipped.get(key)
        if model is not None:
            return model
        path = data_dir / "models" / f"matter-model-{key[0]}-{limit or 'all'}.pickle"
        if path.exists():
            try:
                model = MatterModel.loads(path.read_bytes())
            except Exception:  # a cache from another library version: train again
                log.warning("ignoring unreadable cached matter model %s", path)
        if model is None:
            model = train(limit_per_matter(load_corpus("train"), limit))
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(model.dumps())
            temporary.replace(path)  # atomic: another process never reads half a file
        _shipped[key] = model
        return model
