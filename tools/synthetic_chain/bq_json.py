"""The `bq extract` JSON of transaction inputs and outputs, per address kind, as %-templates."""
from __future__ import annotations

from .actors import Addr

# Output and input JSON per address kind (P2PKH, P2SH, P2WPKH), in bq extract's key order.
_OUT_JSON = (
    '{"index":%d,"script_asm":"OP_DUP OP_HASH160 %s OP_EQUALVERIFY OP_CHECKSIG","script_hex":"76a914%s88ac",'
    '"required_signatures":1,"type":"pubkeyhash","addresses":["%s"],"value":%d}',
    '{"index":%d,"script_asm":"OP_HASH160 %s OP_EQUAL","script_hex":"a914%s87",'
    '"required_signatures":1,"type":"scripthash","addresses":["%s"],"value":%d}',
    '{"index":%d,"script_asm":"0 %s","script_hex":"0014%s",'
    '"required_signatures":1,"type":"witness_v0_keyhash","addresses":["%s"],"value":%d}',
)
_IN_P2PKH_JSON = ('{"index":%d,"spent_transaction_hash":"%s","spent_output_index":%d,"script_asm":"%s[ALL] %s",'
                  '"script_hex":"%02x%s0121%s","sequence":%d,"required_signatures":1,"type":"pubkeyhash",'
                  '"addresses":["%s"],"value":%d}')
# P2SH spends are P2SH-wrapped P2WPKH, the common modern case: the scriptSig pushes 0014<keyhash>.
_IN_P2SH_JSON = ('{"index":%d,"spent_transaction_hash":"%s","spent_output_index":%d,"script_asm":"0014%s",'
                 '"script_hex":"160014%s","sequence":%d,"required_signatures":1,"type":"scripthash",'
                 '"addresses":["%s"],"value":%d}')
# Native segwit inputs have an empty scriptSig (the witness is not in the table).
_IN_P2WPKH_JSON = ('{"index":%d,"spent_transaction_hash":"%s","spent_output_index":%d,"script_asm":"",'
                   '"script_hex":"","sequence":%d,"required_signatures":1,"type":"witness_v0_keyhash",'
                   '"addresses":["%s"],"value":%d}')


def _render_output(j: int, a: Addr, v: int) -> str:
    if a.special is not None:
        return '{"index":%d,%s%d}' % (j, a.special, v)
    return _OUT_JSON[a.kind] % (j, a.h, a.h, a.s, v)
