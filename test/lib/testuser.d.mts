export const TEST_USER: string;
export interface SubidRange {
  owner: string;
  start: number;
  count: number;
}
export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  subuid?: SubidRange;
  subgid?: SubidRange;
}
export function which(name: string): string | null;
export function hasCommand(name: string): boolean;
export function lookupUser(name: string): TestUser | null;
export function parseSubids(text: string): SubidRange[];
export function freeSubidRange(ranges: SubidRange[], count?: number, first?: number): number;
export function ensureTestUser(log?: (msg: string) => void): TestUser;
export function asUserPrefix(user: TestUser): string[];
export function userCan(user: TestUser, argv: string[]): boolean;
export function cleanUserEnv(user: TestUser, extra?: Record<string, string>): Record<string, string>;
export function makeWorldReadable(dir: string): void;
export function packageNames(specifiers: string[]): string[];
export function dependencyClosure(root: string, names: string[]): string[];
export function readableCopy(root: string, dest: string, entries: string[], packages: string[]): string[];
export function nodeForUser(user: TestUser, binDir: string): string;
export function userDir(user: TestUser, dir: string, mode?: number): string;
