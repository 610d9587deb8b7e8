"""Why an artifact's outputs differ from its reference (issue 31; user docs: docs/mismatch.md).

    evidence.of(expected, got, inputs, bound)  -> where they differ, the inputs and outputs there, first pairs
    filefacts.of(path, fmt)                    -> the file's operators in order and its small constants
    rules.explain(evidence, facts, quant)      -> Explanation(rule, cause): the first rule that fits, or
                                                  "unexplained"

The evidence is computed once where outputs are compared and stored in the record (`info["evidence"]`,
bounded); the file's facts beside it (`info["file"]`); the explanation is derived from both whenever it
is shown (report, terminal), so a new rule applies to stored records without re-running anything.
"""
