/**
 * The manifests lattice ships. Integrations are data over the one `http.template` provider, not code of their own.
 * `${fs_root}` and `${http_hosts}` are filled from the configuration when the registry loads them.
 */

const ECHO = `
id = "echo"
version = "1.0.0"
description = "Returns its params unchanged. For tests and demos."
risk = "low"
tags = ["demo"]
cost = 0
timeout = "1s"
[provider]
builtin = "echo"
[request.schema]
type = "object"
required = ["message"]
[request.schema.properties.message]
type = "string"
maxLength = 4096
[request.schema.properties.count]
type = "integer"
minimum = 0
maximum = 1000000
`;

const HTTP_REQUEST = `
id = "http.request"
version = "1.0.0"
description = "A generic HTTPS request to an allowlisted host."
risk = "high"
tags = ["http"]
cost = 1
timeout = "30s"
[provider]
builtin = "http.request"
[request.schema]
type = "object"
required = ["method", "url"]
[request.schema.properties.method]
type = "string"
enum = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
[request.schema.properties.url]
type = "string"
maxLength = 2048
pattern = "^https://"
[request.schema.properties.headers]
type = "object"
maxProperties = 32
additionalProperties = { type = "string", maxLength = 4096 }
[request.schema.properties.body]
type = "string"
maxLength = 262144
\${http_hosts}
`;

const FS_READ = `
id = "fs.read"
version = "1.0.0"
description = "Read a file inside the configured root."
risk = "low"
tags = ["fs"]
cost = 0
timeout = "5s"
[provider]
builtin = "fs.read"
[request.schema]
type = "object"
required = ["path"]
[request.schema.properties.path]
type = "string"
minLength = 1
maxLength = 4096
[sinks.fs]
root = "\${fs_root}"
allow = ["**"]
# Denied at any depth and in any case (core/pipeline/fs-sink.ts): version control (its hooks run code), files and
# directories that hold credentials, and lattice's own home.
deny = [
  ".git", ".git-credentials", ".env*", ".netrc", ".npmrc", ".pypirc", ".pgpass",
  ".ssh", ".gnupg", ".aws", ".azure", ".docker", ".kube", "**/.config/gcloud", "**/.config/gh", ".lattice",
]
`;

const FS_WRITE = FS_READ.replace('id = "fs.read"', 'id = "fs.write"')
  .replace('description = "Read a file inside the configured root."', 'description = "Write a file inside the configured root."')
  .replace('risk = "low"', 'risk = "medium"')
  .replace('builtin = "fs.read"', 'builtin = "fs.write"')
  .replace(
    'required = ["path"]',
    'required = ["path", "content"]\n[request.schema.properties.content]\ntype = "string"\nmaxLength = 1048576',
  );

const GITHUB = (id: string, description: string, risk: string, method: string, path: string, schema: string, body: string) => `
id = "${id}"
version = "1.0.0"
description = "${description}"
risk = "${risk}"
tags = ["github"]
cost = 1
timeout = "15s"
[provider]
builtin = "http.template"
[request.schema]
type = "object"
${schema}
[request.schema.properties.owner]
type = "string"
pattern = "^[A-Za-z0-9-]{1,39}$"
[request.schema.properties.repo]
type = "string"
# Not "." or "..": a URL path segment the parser would remove, so the request would name another repository.
pattern = "^(?![.][.]?$)[A-Za-z0-9._-]{1,100}$"
[[sinks.http]]
host = "api.github.com"
methods = ["${method}"]
[[secrets]]
name = "github"
header = "authorization"
format = "Bearer {secret}"
secret = "GITHUB_TOKEN"
[template]
method = "${method}"
url = "https://api.github.com/repos/{params.owner}/{params.repo}${path}"
[template.headers]
accept = "application/vnd.github+json"
x-github-api-version = "2022-11-28"
${body}
`;

const GITHUB_ISSUE_CREATE = GITHUB(
  'github.issue.create',
  'Open an issue in a GitHub repository.',
  'medium',
  'POST',
  '/issues',
  `required = ["owner", "repo", "title"]
[request.schema.properties.title]
type = "string"
minLength = 1
maxLength = 256
[request.schema.properties.body]
type = "string"
maxLength = 65536`,
  `[template.body]
title = "{params.title}"
body = "{params.body}"`,
);

const GITHUB_PR_CREATE = GITHUB(
  'github.pr.create',
  'Open a pull request in a GitHub repository.',
  'medium',
  'POST',
  '/pulls',
  `required = ["owner", "repo", "title", "head", "base"]
[request.schema.properties.title]
type = "string"
minLength = 1
maxLength = 256
[request.schema.properties.head]
type = "string"
maxLength = 255
[request.schema.properties.base]
type = "string"
maxLength = 255
[request.schema.properties.body]
type = "string"
maxLength = 65536`,
  `[template.body]
title = "{params.title}"
head = "{params.head}"
base = "{params.base}"
body = "{params.body}"`,
);

const GITHUB_PR_MERGE = GITHUB(
  'github.pr.merge',
  'Merge a pull request.',
  'high',
  'PUT',
  '/pulls/{params.number}/merge',
  `required = ["owner", "repo", "number"]
[request.schema.properties.number]
type = "integer"
minimum = 1
[request.schema.properties.merge_method]
type = "string"
enum = ["merge", "squash", "rebase"]`,
  `[template.body]
merge_method = "{params.merge_method}"`,
);

const SLACK_MESSAGE_POST = `
id = "slack.message.post"
version = "1.0.0"
description = "Post a message to a Slack channel."
risk = "medium"
tags = ["slack"]
cost = 1
timeout = "10s"
[provider]
builtin = "http.template"
[request.schema]
type = "object"
required = ["channel", "text"]
[request.schema.properties.channel]
type = "string"
pattern = "^[A-Za-z0-9_#-]{1,80}$"
[request.schema.properties.text]
type = "string"
minLength = 1
maxLength = 40000
[[sinks.http]]
host = "slack.com"
methods = ["POST"]
[[secrets]]
name = "slack"
header = "authorization"
format = "Bearer {secret}"
secret = "SLACK_BOT_TOKEN"
[template]
method = "POST"
url = "https://slack.com/api/chat.postMessage"
[template.headers]
content-type = "application/json; charset=utf-8"
[template.body]
channel = "{params.channel}"
text = "{params.text}"
`;

export const BUILTIN_MANIFESTS: Readonly<Record<string, string>> = {
  echo: ECHO,
  'http.request': HTTP_REQUEST,
  'fs.read': FS_READ,
  'fs.write': FS_WRITE,
  'github.issue.create': GITHUB_ISSUE_CREATE,
  'github.pr.create': GITHUB_PR_CREATE,
  'github.pr.merge': GITHUB_PR_MERGE,
  'slack.message.post': SLACK_MESSAGE_POST,
};
