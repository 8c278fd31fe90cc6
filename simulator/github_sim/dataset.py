"""Seeded generation of a realistic organisation: users, repositories, issues, PRs, commits, trees.

Everything derives from ``(seed, repository index)`` with its own RNG per repository, so a
repository's content does not depend on how many repositories are generated around it and
the same seed always gives the same data.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from github_sim.config import SimulatorConfig

log = logging.getLogger(__name__)

HISTORY_DAYS = 730  # commits and issues spread over the last ~2 years
USER_POOL_SIZE = 80
USER_ID_BASE = 5_000_000
ORG_ID_BASE = 9_000_000
REPO_ID_BASE = 600_000_000
ISSUE_ID_BASE = 2_000_000_000
PR_ID_BASE = 1_000_000_000
ID_STRIDE = 100_000  # ids per repository for issues / PRs / labels
LABEL_ID_BASE = 7_000_000_000
MEDIUM_REPO_SHARE = 0.08
FORK_SHARE = 0.1
PRIVATE_SHARE = 0.05
BIG_REPO_EVERY = 60  # one big repository per this many repositories (at least one)

FIRST_NAMES = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yara",
    "zoe",
    "amir",
    "bea",
    "chen",
    "dmitri",
    "elena",
    "farah",
    "goran",
    "hana",
    "ines",
    "jonas",
    "kenji",
    "lena",
    "marco",
    "nora",
    "omar",
    "priya",
    "quinn",
    "rosa",
    "sven",
)
LAST_NAMES = (
    "smith",
    "nguyen",
    "garcia",
    "mueller",
    "rossi",
    "kim",
    "okafor",
    "silva",
    "novak",
    "tanaka",
    "dubois",
    "jensen",
    "kowalski",
    "haddad",
    "ivanova",
    "patel",
    "lopez",
    "schmidt",
    "costa",
    "berg",
)
REPO_WORDS = (
    "api",
    "web",
    "core",
    "sdk",
    "cli",
    "infra",
    "billing",
    "auth",
    "search",
    "payments",
    "docs",
    "mobile",
    "gateway",
    "worker",
    "scheduler",
    "ledger",
    "analytics",
    "etl",
    "portal",
    "admin",
    "notifications",
    "catalog",
    "inventory",
    "checkout",
    "identity",
    "metrics",
    "tracing",
    "deploy",
    "config",
    "terraform",
    "helm",
    "design-system",
    "ui-kit",
    "pipeline",
    "ingest",
    "export",
    "sync",
)
REPO_SUFFIXES = ("service", "server", "client", "lib", "tools", "app", "bot", "operator", "plugin")
LANGUAGES = (
    ("Python", 0.26),
    ("TypeScript", 0.18),
    ("Go", 0.14),
    ("JavaScript", 0.1),
    ("Java", 0.08),
    ("Rust", 0.06),
    ("Ruby", 0.05),
    ("Shell", 0.04),
    ("HCL", 0.04),
    ("Kotlin", 0.03),
    ("C++", 0.02),
)
SECONDARY_LANGUAGES = ("Shell", "Dockerfile", "Makefile", "HTML", "CSS", "JavaScript", "Python")
TOPICS = (
    "api",
    "backend",
    "frontend",
    "microservice",
    "kubernetes",
    "terraform",
    "data",
    "ml",
    "cli",
    "library",
    "internal",
    "payments",
    "security",
    "observability",
    "devops",
    "python",
    "golang",
    "typescript",
    "react",
    "grpc",
    "graphql",
    "postgres",
    "kafka",
)
LICENSES = (
    ("mit", "MIT License", "MIT"),
    ("apache-2.0", "Apache License 2.0", "Apache-2.0"),
    ("bsd-3-clause", 'BSD 3-Clause "New" or "Revised" License', "BSD-3-Clause"),
    ("gpl-3.0", "GNU General Public License v3.0", "GPL-3.0"),
)
# (name, color, description, GitHub default label?)
LABELS = (
    ("bug", "d73a4a", "Something isn't working", True),
    ("documentation", "0075ca", "Improvements or additions to documentation", True),
    ("enhancement", "a2eeef", "New feature or request", True),
    ("good first issue", "7057ff", "Good for newcomers", True),
    ("help wanted", "008672", "Extra attention is needed", True),
    ("question", "d876e3", "Further information is requested", True),
    ("wontfix", "ffffff", "This will not be worked on", True),
    ("duplicate", "cfd3d7", "This issue or pull request already exists", True),
    ("critical", "b60205", "", False),
    ("blocker", "b60205", "Blocks a release", False),
    ("security", "ee0701", "Security issue", False),
    ("regression", "e11d21", "Worked before, broken now", False),
    ("severity: high", "d93f0b", "", False),
    ("severity: low", "c2e0c6", "", False),
    ("sev1", "b60205", "", False),
    ("sev2", "d93f0b", "", False),
    ("sev3", "fbca04", "", False),
    ("P0", "b60205", "", False),
    ("P1", "d93f0b", "", False),
    ("P2", "fbca04", "", False),
    ("priority/high", "d93f0b", "", False),
    ("priority/low", "0e8a16", "", False),
    ("in progress", "1d76db", "Someone is working on it", False),
    ("wip", "fef2c0", "Work in progress", False),
    ("dependencies", "0366d6", "Pull requests that update a dependency file", False),
    ("tech-debt", "5319e7", "", False),
)
BUG_LABELS = (
    "bug",
    "critical",
    "blocker",
    "security",
    "regression",
    "severity: high",
    "sev1",
    "sev2",
    "P0",
    "P1",
)
ISSUE_VERBS = ("Fix", "Handle", "Support", "Crash in", "Timeout in", "Improve", "Add", "Refactor", "Document")
ISSUE_OBJECTS = (
    "login flow",
    "pagination",
    "retry logic",
    "CSV export",
    "webhook handler",
    "config loader",
    "cache",
    "rate limiting",
    "search index",
    "dark mode",
    "database migration",
    "error messages",
    "CLI flags",
    "memory leak in worker",
    "null pointer on empty input",
    "timezone handling",
    "unicode names",
)
COMMIT_MESSAGES = (
    "Fix typo",
    "Bump dependencies",
    "Add tests for {o}",
    "Refactor {o}",
    "Fix {o}",
    "Update README",
    "Improve {o} performance",
    "Handle edge case in {o}",
    "Merge pull request #{n} from {u}/patch-{n}",
    "chore: release",
    "feat: add {o}",
    "fix: {o} on empty input",
    "docs: explain {o}",
    "ci: speed up build",
)
BOT_LOGIN = "dependabot[bot]"
NAME_RETRIES = 50  # draws before a duplicate repository name gets a numeric suffix


@dataclass(slots=True)
class User:
    """A GitHub account (user, bot or organisation)."""

    login: str
    id: int
    type: str = "User"
    name: str | None = None
    email: str | None = None
    created_at: datetime | None = None
    site_admin: bool = False


@dataclass(slots=True)
class Label:
    """A repository label."""

    id: int
    name: str
    color: str
    description: str
    default: bool


@dataclass(slots=True)
class Issue:
    """An issue or a pull request (GitHub stores PRs as issues too)."""

    id: int
    number: int
    title: str
    body: str | None
    user: User
    state: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    state_reason: str | None = None
    labels: list[Label] = field(default_factory=list)
    assignees: list[User] = field(default_factory=list)
    comments: int = 0
    locked: bool = False
    author_association: str = "MEMBER"
    is_pr: bool = False
    pr_id: int = 0
    draft: bool = False
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    head_ref: str = ""
    head_sha: str = ""
    base_ref: str = "main"


@dataclass(slots=True)
class Commit:
    """A commit on the default branch."""

    sha: str
    message: str
    author: User | None  # None: the e-mail is not linked to any GitHub account
    author_name: str
    author_email: str
    date: datetime
    parent: str | None
    tree_sha: str


@dataclass(slots=True)
class TreeEntry:
    """One entry of the default branch's tree."""

    path: str
    type: str  # "blob" or "tree"
    sha: str
    size: int | None
    mode: str


@dataclass(slots=True)
class Repo:
    """A repository and everything listed under it."""

    index: int
    id: int
    name: str
    description: str | None
    private: bool
    fork: bool
    archived: bool
    language: str | None
    languages: dict[str, int]
    topics: list[str]
    created_at: datetime
    updated_at: datetime
    pushed_at: datetime
    license: tuple[str, str, str] | None
    homepage: str | None
    stargazers: int
    forks_count: int
    watchers: int
    size_kb: int
    default_branch: str = "main"
    has_issues: bool = True
    has_wiki: bool = True
    has_projects: bool = True
    is_template: bool = False
    deleted: bool = False
    labels: dict[str, Label] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)  # by number, ascending
    commits: list[Commit] = field(default_factory=list)  # newest first
    tree: list[TreeEntry] = field(default_factory=list)
    next_number: int = 1
    next_label_id: int = 0
    version: int = 0  # bumped by every mutation; keys the listing caches

    @property
    def open_issues_count(self) -> int:
        """Open issues plus open pull requests, as GitHub counts them."""
        return sum(1 for i in self.issues.values() if i.state == "open")


@dataclass
class DataSet:
    """The whole simulated organisation."""

    owner: User
    users: list[User]
    bot: User
    repos: list[Repo]


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


def _tree(rng: random.Random, repo_id: int, language: str | None, head: str) -> list[TreeEntry]:
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
            id=ISSUE_ID_BASE + repo.index * ID_STRIDE + number,
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
            issue.pr_id = PR_ID_BASE + repo.index * ID_STRIDE + number
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
        repo.labels[name] = Label(
            LABEL_ID_BASE + repo.index * ID_STRIDE + repo.next_label_id, name, color, description, default
        )
        repo.next_label_id += 1


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
    repo_id = REPO_ID_BASE + index * 13 + 7
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
        repo.tree = _tree(rng, repo_id, language, repo.commits[0].sha)
    return repo


def repo_kinds(config: SimulatorConfig) -> list[str]:
    """Return the kind of each repository index (big ones spread through the listing)."""
    n = config.repos
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
    bot = User(login=BOT_LOGIN, id=49_699_333, type="Bot", created_at=anchor - timedelta(days=2500))
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
