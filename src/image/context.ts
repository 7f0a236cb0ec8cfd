// What every image/volume/build command needs: who runs it and where the
// store is.

import { identity, type IdentityInfo } from '../host/ids';
import { hutchPaths, type HutchPaths } from '../host/paths';
import { Store } from './store';

export interface StoreContext {
  ids: IdentityInfo;
  paths: HutchPaths;
  store: Store;
}

export function storeContext(env: NodeJS.ProcessEnv = process.env): StoreContext {
  const ids = identity(env);
  const paths = hutchPaths(env, ids.home, ids.uid);
  return { ids, paths, store: new Store(paths.dataDir) };
}
