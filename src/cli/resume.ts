// `hutch resume NAME...`: thaw a sandbox frozen by `hutch pause` (src/cli/pause.ts).

export { resumeCommand } from './pause';
