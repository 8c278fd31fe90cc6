"""Seeded generation of a realistic organisation: users, repositories, issues, PRs, commits, trees.

Owns the draws and GitHub's id scheme of the simulated records (:func:`repository_id`,
:func:`issue_id`...; the mutations in :mod:`github_sim.state` number new records with the same
functions). It must not keep state or render JSON.

Everything derives from ``(seed, repository index)`` with its own RNG per repository, so a
repository's content does not depend on how many repositories are generated around it and
the same seed always gives the same data.

One piece (>300 lines) because the generators of one repository draw from one RNG in a fixed
order: spreading them over modules would make it easy to reorder the draws, which silently
changes the data every seed gives (tests pick repositories by that data).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
from datetime import datetime, timedelta

from github_sim.config import SimulatorConfig
from github_sim.records import Commit, DataSet, Issue, Label, Repo, TreeEntry, User
from github_sim.vocabulary import (
    COMMIT_MESSAGES,
    FIRST_NAMES,
    ISSUE_OBJECTS,
    ISSUE_VERBS,
    LABELS,
    LANGUAGES,
    LAST_NAMES,
    LICENSES,
    REPO_SUFFIXES,
    REPO_WORDS,
    SECONDARY_LANGUAGES,
    TOPICS,
)

log = logging.getLogger(__name__)

HISTORY_DAYS = 730  # commits and issues spread over the last ~2 years
USER_POOL_SIZE = 80
USER_ID_BASE = 5_000_000
ORG_ID_BASE = 9_000_000
REPO_ID_BASE = 600_000_000
REPO_ID_STEP = 13  # repository ids are spread out, as GitHub's are not consecutive within an owner
REPO_ID_OFFSET = 7
ISSUE_ID_BASE = 2_000_000_000
PR_ID_BASE = 1_000_000_000
ID_STRIDE = 100_000  # ids per repository for issues / PRs / labels
LABEL_ID_BASE = 7_000_000_000
MEDIUM_REPO_SHARE = 0.08
FORK_SHARE = 0.1
PRIVATE_SHARE = 0.05
BIG_REPO_EVERY = 60  # one big repository per this many repositories (at least one)

BOT_LOGIN = "dependabot[bot]"
BOT_ID = 49_699_333  # dependabot[bot]'s id on github.com
NAME_RETRIES = 50  # draws before a duplicate repository name gets a numeric suffix


def repository_id(index: int) -> int:
    """The id of the repository at position ``index`` of the organisation."""
    return REPO_ID_BASE + index * REPO_ID_STEP + REPO_ID_OFFSET


def issue_id(repo: Repo, number: int) -> int:
    """The id of issue (or pull request) ``number`` of ``repo`` as an issue."""
    return ISSUE_ID_BASE + repo.index * ID_STRIDE + number


def pull_request_id(repo: Repo, number: int) -> int:
    """The id of pull request ``number`` of ``repo`` as a pull request (GitHub gives it two ids)."""
    return PR_ID_BASE + repo.index * ID_STRIDE + number


def next_label_id(repo: Repo) -> int:
    """Allocate the id of the next label created in ``repo``."""
    label_id = LABEL_ID_BASE + repo.index * ID_STRIDE + repo.next_label_id
    repo.next_label_id += 1
    return label_id


def sha1_hex(*parts: object) -> str:
    """Return a deterministic 40-hex git-like id of ``parts``."""
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


def _users(seed: int, anchor: datetime) -> list[User]:
    rng = random.Random(f"users:{seed}")
    users: list[User] = []
    seen: set[str] = set()
    while len(users) < USER_POOL_SIZE:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        style = rng.random()
        login = (
            f"{first}-{last}"
            if style < 0.4
            else f"{first}{last[:3]}"
            if style < 0.7
            else f"{first}{rng.randint(1, 99)}"
        )
        if login in seen:
            continue
        seen.add(login)
        created = anchor - timedelta(days=rng.randint(800, 4000))
        users.append(
            User(
                login=login,
                id=USER_ID_BASE + len(users) * 7 + 1,
                name=f"{first.title()} {last.title()}",
                email=f"{first}.{last}@example.com" if rng.random() < 0.5 else None,
                created_at=created,
            )
        )
    return users


def _repo_names(seed: int, count: int) -> list[str]:
    rng = random.Random(f"names:{seed}")
    names: list[str] = []
    seen: set[str] = set()
    retries = 0
    while len(names) < count:
        word = rng.choice(REPO_WORDS)
        shape = rng.random()
        if shape < 0.4:
            name = word
        elif shape < 0.8:
            name = f"{word}-{rng.choice(REPO_SUFFIXES)}"
        else:
            name = f"{word}-{rng.choice(REPO_WORDS)}"
        if name in seen:
            retries += 1
            if retries < NAME_RETRIES:
                continue
            name = f"{name}-{len(names)}"  # vocabulary exhausted (thousands of repositories)
        retries = 0
        seen.add(name)
        names.append(name)
    return names


def _pick_language(rng: random.Random) -> str:
    x = rng.random() * sum(w for _, w in LANGUAGES)
    for lang, weight in LANGUAGES:
        x -= weight
        if x <= 0:
            return lang
    return LANGUAGES[0][0]


def make_tree(rng: random.Random, repo_id: int, language: str | None, head: str) -> list[TreeEntry]:
    """Draw the default branch's tree of a repository whose head commit is ``head``."""
    files: list[str] = ["README.md"]
    if rng.random() < 0.8:
        files.append("LICENSE")
    slug = "app"
    with_tests = rng.random() < 0.7
    if language == "Python":
        files += ["pyproject.toml", f"src/{slug}/__init__.py", f"src/{slug}/core.py", f"src/{slug}/cli.py"]
        if with_tests:
            files += ["tests/__init__.py", "tests/test_core.py", "tests/test_cli.py"]
    elif language in ("TypeScript", "JavaScript"):
        ext = "ts" if language == "TypeScript" else "js"
        files += ["package.json", f"src/index.{ext}", f"src/routes.{ext}"]
        if language == "TypeScript":
            files.append("tsconfig.json")
        if with_tests:
            files += [f"tests/index.test.{ext}"]
    elif language == "Go":
        files += ["go.mod", "go.sum", "main.go", "internal/server/server.go"]
        if with_tests:
            files += ["internal/server/server_test.go"]
    elif language == "Rust":
        files += ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"]
        if with_tests:
            files += ["tests/integration.rs"]
    elif language in ("Java", "Kotlin"):
        ext = "java" if language == "Java" else "kt"
        files += ["pom.xml", f"src/main/{language.lower()}/com/acme/App.{ext}"]
        if with_tests:
            files += [f"src/test/{language.lower()}/com/acme/AppTest.{ext}"]
    elif language == "Ruby":
        files += ["Gemfile", "Gemfile.lock", "lib/app.rb"]
        if with_tests:
            files += ["spec/app_spec.rb"]
    elif language == "HCL":
        files += ["main.tf", "variables.tf", "outputs.tf"]
    elif language == "C++":
        files += ["CMakeLists.txt", "src/main.cpp", "include/app.h"]
        if with_tests:
            files += ["tests/test_main.cpp"]
    else:
        files += ["scripts/run.sh"]
    if rng.random() < 0.45:
        files.append("Dockerfile")
    if rng.random() < 0.6:
        files.append(".github/workflows/ci.yml")
        if rng.random() < 0.4:
            files.append(".github/workflows/release.yml")
    if rng.random() < 0.3:
        files.append("docs/index.md")
    dirs: set[str] = set()
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    entries = [TreeEntry(d, "tree", sha1_hex("tree", repo_id, head, d), None, "040000") for d in dirs]
    entries += [
        TreeEntry(p, "blob", sha1_hex("blob", repo_id, head, p), rng.randint(40, 40_000), "100644")
        for p in files
    ]
    entries.sort(key=lambda e: e.path)
    return entries


def _commits(
    rng: random.Random, repo_id: int, count: int, users: list[User], start: datetime, end: datetime
) -> list[Commit]:
    if count == 0:
        return []
    span = max((end - start).total_seconds(), 1.0)
    offsets = sorted((rng.random() * span for _ in range(count)), reverse=True)
    authors = rng.sample(users, k=min(len(users), rng.randint(1, 12)))
    # Some commits come from e-mails that belong to no GitHub account: author is null in the API.
    anon = [(f"{n.title()} Contractor", f"{n}@contractor.example.net") for n in rng.sample(FIRST_NAMES, 3)]
    commits: list[Commit] = []
    for i, off in enumerate(offsets):
        sha = sha1_hex("commit", repo_id, count - i)
        date = (start + timedelta(seconds=off)).replace(microsecond=0)
        if rng.random() < 0.1:
            name, email = rng.choice(anon)
            author = None
        else:
            author = rng.choice(authors)
            name, email = (
                author.name or author.login,
                author.email or f"{author.id}+{author.login}@users.noreply.github.com",
            )
        msg = rng.choice(COMMIT_MESSAGES).format(
            o=rng.choice(ISSUE_OBJECTS), n=rng.randint(1, 500), u=author.login if author else "someone"
        )
        commits.append(Commit(sha, msg, author, name, email, date, None, sha1_hex("root-tree", repo_id, sha)))
    for newer, older in itertools.pairwise(commits):
        newer.parent = older.sha
    return commits


def _issues(
    rng: random.Random,
    repo: Repo,
    count: int,
    users: list[User],
    bot: User,
    start: datetime,
    end: datetime,
) -> None:
    label_pool = list(repo.labels.values())
    span = max((end - start).total_seconds(), 1.0)
    created = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(count))
    people = rng.sample(users, k=min(len(users), rng.randint(3, 20)))
    for number, created_at in enumerate(created, start=1):
        created_at = created_at.replace(microsecond=0)
        is_pr = rng.random() < 0.4
        user = bot if is_pr and rng.random() < 0.12 else rng.choice(people)
        verb, obj = rng.choice(ISSUE_VERBS), rng.choice(ISSUE_OBJECTS)
        title = (
            f"Bump {obj.split()[0]} from 1.{rng.randint(0, 9)} to 1.{rng.randint(10, 20)}"
            if user is bot
            else f"{verb} {obj}"
        )
        closed = rng.random() < (0.75 if created_at < end - timedelta(days=60) else 0.35)
        age = (end - created_at).total_seconds()
        closed_at = created_at + timedelta(seconds=rng.random() * min(age, 90 * 86400)) if closed else None
        updated_at = closed_at or created_at + timedelta(seconds=rng.random() * min(age, 30 * 86400))
        labels: list[Label] = []
        if label_pool and rng.random() < 0.7:
            labels = rng.sample(label_pool, k=min(len(label_pool), rng.choice((1, 1, 1, 2, 2, 3))))
        if user is bot and "dependencies" in repo.labels:
            labels = [repo.labels["dependencies"]]
        assignees = rng.sample(people, k=rng.choice((0, 0, 1, 1, 2))) if people else []
        issue = Issue(
            id=issue_id(repo, number),
            number=number,
            title=title,
            body=None if rng.random() < 0.15 else f"Steps to reproduce:\n\n1. open {obj}\n2. see the error\n",
            user=user,
            state="closed" if closed else "open",
            created_at=created_at,
            updated_at=updated_at.replace(microsecond=0),
            closed_at=closed_at.replace(microsecond=0) if closed_at else None,
            labels=labels,
            assignees=assignees,
            comments=rng.choice((0, 0, 1, 2, 3, 5, 8, 13)),
            author_association="NONE"
            if user is bot
            else rng.choice(("MEMBER", "MEMBER", "CONTRIBUTOR", "COLLABORATOR")),
            is_pr=is_pr,
        )
        if closed and not is_pr:
            issue.state_reason = "completed" if rng.random() < 0.8 else "not_planned"
        if is_pr:
            issue.pr_id = pull_request_id(repo, number)
            issue.head_ref = f"{user.login.replace('[bot]', '')}/{obj.split()[0].lower()}-{number}"
            issue.head_sha = sha1_hex("head", repo.id, number)
            issue.draft = not closed and rng.random() < 0.2
            if closed and rng.random() < 0.8:
                issue.merged_at = issue.closed_at
                issue.merge_commit_sha = sha1_hex("merge", repo.id, number)
        repo.issues[number] = issue
    repo.next_number = count + 1


def _labels(rng: random.Random, repo: Repo) -> None:
    defaults = [entry for entry in LABELS if entry[3]]
    extras = rng.sample([entry for entry in LABELS if not entry[3]], k=rng.randint(2, 9))
    for name, color, description, default in defaults + extras:
        repo.labels[name] = Label(next_label_id(repo), name, color, description, default)


def make_repo(
    seed: int,
    index: int,
    name: str,
    kind: str,
    users: list[User],
    bot: User,
    anchor: datetime,
) -> Repo:
    """Generate one repository deterministically from ``(seed, index)``.

    Args:
        seed: data-set seed.
        index: position of the repository in the organisation.
        name: repository name.
        kind: ``"big"``, ``"medium"``, ``"small"``, ``"empty"`` or ``"archived"``.
        users: pool of accounts that author issues and commits.
        bot: the dependency bot account.
        anchor: end of the generated history.
    """
    rng = random.Random(f"repo:{seed}:{index}")
    repo_id = repository_id(index)
    created_at = anchor - timedelta(days=rng.randint(60, HISTORY_DAYS + 900), seconds=rng.randint(0, 86_399))
    language = None if kind == "empty" else _pick_language(rng)
    if kind == "big":
        n_issues, n_commits = rng.randint(1500, 3000), rng.randint(2000, 5000)
        created_at = anchor - timedelta(days=HISTORY_DAYS + rng.randint(100, 900))
    elif kind == "medium":
        n_issues, n_commits = rng.randint(101, 320), rng.randint(200, 900)
    elif kind == "empty":
        n_issues, n_commits = rng.randint(0, 2), 0
    else:
        n_issues, n_commits = rng.choice((0, 1, 2, 3, 5, 8, 12, 18, 25, 30)), rng.randint(1, 150)
    history_start = max(created_at, anchor - timedelta(days=HISTORY_DAYS))
    last_push = anchor - timedelta(
        days=rng.choice((0, 1, 2, 5, 10, 30, 90, 200, 400)), seconds=rng.randint(0, 86_399)
    )
    if kind == "archived":
        last_push = anchor - timedelta(days=rng.randint(300, 600))
    last_push = max(last_push, history_start + timedelta(hours=1))
    languages: dict[str, int] = {}
    if language:
        languages[language] = rng.randint(5_000, 2_000_000)
        for extra in rng.sample(SECONDARY_LANGUAGES, k=rng.randint(0, 3)):
            if extra != language:
                languages[extra] = rng.randint(100, languages[language] // 3 + 100)
    stars = int(rng.paretovariate(1.2) * 3) - 3 + (500 if kind == "big" else 0)
    repo = Repo(
        index=index,
        id=repo_id,
        name=name,
        description=None if rng.random() < 0.15 else f"{name.replace('-', ' ').title()} for the platform",
        private=kind == "small" and rng.random() < PRIVATE_SHARE,
        fork=kind == "small" and rng.random() < FORK_SHARE,
        archived=kind == "archived",
        language=language,
        languages=dict(sorted(languages.items(), key=lambda kv: -kv[1])),
        topics=sorted(rng.sample(TOPICS, k=rng.choice((0, 0, 1, 2, 3, 4)))),
        created_at=created_at.replace(microsecond=0),
        updated_at=last_push.replace(microsecond=0),
        pushed_at=(last_push if n_commits else created_at).replace(microsecond=0),
        license=rng.choice(LICENSES) if rng.random() < 0.7 else None,
        homepage=f"https://{name}.example.com" if rng.random() < 0.2 else None,
        stargazers=max(stars, 0),
        forks_count=rng.randint(0, 40 if kind == "big" else 5),
        watchers=rng.randint(1, 30),
        size_kb=0 if kind == "empty" else rng.randint(20, 90_000),
        default_branch="main" if rng.random() < 0.85 else "master",
    )
    repo.watchers = repo.stargazers  # GitHub's "watchers" field mirrors stargazers_count
    _labels(rng, repo)
    repo.commits = _commits(rng, repo_id, n_commits, users, history_start, last_push)
    if n_issues:
        _issues(rng, repo, n_issues, users, bot, history_start, anchor)
    if repo.commits:
        repo.tree = make_tree(rng, repo_id, language, repo.commits[0].sha)
    return repo


def repo_kinds(config: SimulatorConfig) -> list[str]:
    """Return the kind of each repository index (big ones spread through the listing)."""
    n = config.repos
    if config.repo_mix == "small":
        return ["small"] * n  # returns before any draw: the default mix stays what the seed gives
    rng = random.Random(f"kinds:{config.seed}")
    big = config.big_repos if config.big_repos is not None else (max(1, n // BIG_REPO_EVERY) if n >= 5 else 0)
    kinds = ["small"] * n
    indexes = list(range(n))
    rng.shuffle(indexes)
    plan = (
        ["big"] * big
        + ["empty"] * min(config.empty_repos, n)
        + ["archived"] * min(config.archived_repos, n)
        + ["medium"] * int(n * MEDIUM_REPO_SHARE)
    )
    for idx, kind in zip(indexes, plan, strict=False):
        kinds[idx] = kind
    return kinds


def private_indexes(kinds: list[str], seed: int, count: int) -> set[int]:
    """Return ``count`` repository indexes to make private, chosen by the seeded RNG.

    Repositories that are neither big nor empty come first (a private repository with history is
    the interesting case); big and empty ones are only used when ``count`` needs them.
    """
    rng = random.Random(f"private:{seed}")
    preferred = [i for i, kind in enumerate(kinds) if kind not in ("big", "empty")]
    others = [i for i, kind in enumerate(kinds) if kind in ("big", "empty")]
    rng.shuffle(preferred)
    rng.shuffle(others)
    return set((preferred + others)[:count])


def generate(config: SimulatorConfig) -> DataSet:
    """Generate the organisation described by ``config``."""
    anchor = config.data_anchor
    users = _users(config.seed, anchor)
    bot = User(login=BOT_LOGIN, id=BOT_ID, type="Bot", created_at=anchor - timedelta(days=2500))
    owner = User(
        login=config.owner,
        id=(ORG_ID_BASE if config.owner_type == "Organization" else USER_ID_BASE - 1) + config.seed,
        type=config.owner_type,
        name=config.owner.title(),
        created_at=anchor - timedelta(days=3000),
    )
    names = _repo_names(config.seed, config.repos)
    kinds = repo_kinds(config)
    repos = [make_repo(config.seed, i, names[i], kinds[i], users, bot, anchor) for i in range(config.repos)]
    if config.private_repos is not None:
        # Override the per-repository draw only after generation, so every other field (and every
        # repository of a config without private_repos) stays exactly what the seed gives.
        private = private_indexes(kinds, config.seed, config.private_repos)
        for repo in repos:
            repo.private = repo.index in private
    log.debug("generated %d repositories for %s (seed %d)", len(repos), config.owner, config.seed)
    return DataSet(owner=owner, users=users, bot=bot, repos=repos)
