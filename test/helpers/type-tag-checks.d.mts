// Types for type-tag-checks.mjs (plain JS so Bun and Deno can run it).
export interface WrongReceiverCall {
  entry: string;
  receiver: string;
  refusal: { name: string; code: unknown; message: string } | null;
}

export function wrongReceivers(dir: string): { calls: WrongReceiverCall[]; sane: boolean; mappingOk: boolean };
