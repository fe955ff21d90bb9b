/**
 * `lattice completion bash|zsh|fish`: a completion script generated from the command tree itself, so it always
 * lists the commands and flags this lattice has. Each shell gets commands, subcommands and long flags; values
 * (ids, files) complete as the shell's defaults do.
 */
import type { Command } from 'commander';
import { LatticeError } from '../../core/errors.ts';
import { example } from '../common.ts';

interface Node {
  readonly path: string[];
  readonly subcommands: string[];
  readonly flags: string[];
}

function walk(cmd: Command, path: string[] = []): Node[] {
  const flags = [...cmd.options.map((o) => o.long).filter((f): f is string => f !== undefined), '--help'];
  const visible = cmd.commands.filter((c) => c.name() !== 'help');
  return [{ path, subcommands: visible.map((c) => c.name()), flags }, ...visible.flatMap((c) => walk(c, [...path, c.name()]))];
}

function bash(nodes: Node[]): string {
  const cases = nodes.map((n) => `    "${n.path.join(' ')}") words="${[...n.subcommands, ...n.flags].join(' ')}" ;;`).join('\n');
  return `# lattice completion for bash: source <(lattice completion bash)
_lattice() {
  local cur path="" w i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case " $(_lattice_words "\${path% }") " in *" $w "*) path="$path$w " ;; esac
  done
  COMPREPLY=($(compgen -W "$(_lattice_words "\${path% }")" -- "$cur"))
  [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
_lattice_words() {
  local words=""
  case "$1" in
${cases}
  esac
  echo "$words"
}
complete -F _lattice lattice
`;
}

function zsh(nodes: Node[]): string {
  return `#compdef lattice
# lattice completion for zsh: lattice completion zsh > "\${fpath[1]}/_lattice"
autoload -U +X bashcompinit && bashcompinit
${bash(nodes).replace(/^# .*\n/, '')}`;
}

function fish(nodes: Node[]): string {
  const lines = ['# lattice completion for fish: lattice completion fish > ~/.config/fish/completions/lattice.fish', 'complete -c lattice -f'];
  for (const n of nodes) {
    const after = n.path.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${n.path[n.path.length - 1] ?? ''}`;
    for (const sub of n.subcommands) lines.push(`complete -c lattice -n '${after}' -a ${sub}`);
    if (n.path.length > 0) for (const flag of n.flags) lines.push(`complete -c lattice -n '${after}' -l ${flag.slice(2)}`);
  }
  return `${lines.join('\n')}\n`;
}

export function registerCompletion(program: Command): void {
  const cmd = program
    .command('completion <shell>')
    .description('print a shell completion script (bash, zsh or fish)')
    .action((shell: string) => {
      const nodes = walk(program);
      const script = shell === 'bash' ? bash(nodes) : shell === 'zsh' ? zsh(nodes) : shell === 'fish' ? fish(nodes) : null;
      if (script === null) throw new LatticeError('INVALID_ARGUMENT', `no completion for ${JSON.stringify(shell)}: use bash, zsh or fish`);
      process.stdout.write(script);
    });
  example(cmd, 'source <(lattice completion bash)', 'lattice completion zsh > "${fpath[1]}/_lattice"', 'lattice completion fish > ~/.config/fish/completions/lattice.fish');
}
