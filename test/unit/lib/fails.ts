// The one way unit tests expect hutch's own error: a HutchError, exit 125.

import * as assert from 'uvu/assert';
import { HutchError } from '../../../src/util/errors';

export function fails(fn: () => unknown): HutchError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, HutchError);
    assert.is((e as HutchError).exitCode, 125);
    return e as HutchError;
  }
  throw new assert.Assertion({ message: 'expected a HutchError', operator: 'throws', expects: 'HutchError', actual: 'success' });
}
