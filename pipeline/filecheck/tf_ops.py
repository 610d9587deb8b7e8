"""The TensorFlow ops a SavedModel may contain (`pipeline/filecheck/savedmodel.py`): an allow-list of pure
tensor ops plus the plumbing every TF2 SavedModel has (calls, variables, control flow). Anything else is
refused, by name. Why an allow-list: TF's own `is_stateful` flag is no guide (ReadFile, MatchingFiles,
ImmutableConst, DecodeProtoV2, PyFuncStateless and the Dataset ops are registered as stateless), and a
deny-list misses the next I/O op. `DENIED` only gives a refusal its reason.

Add an op: only a pure one (no file, network, process, Python or device I/O, no reads of paths given as
attributes); the Keras-twin test (tests/filecheck/test_savedmodel.py) shows what normal exports use.
"""
from __future__ import annotations

import re

_ALLOWED_TEXT = """
# arithmetic, comparison, logic
Abs Acos Acosh Add AddN AddV2 All Angle Any ApproximateEqual ArgMax ArgMin Asin Asinh Atan Atan2 Atanh
BesselI0e BesselI1e Betainc BitwiseAnd BitwiseOr BitwiseXor Ceil ClipByValue Complex ComplexAbs Conj Cos Cosh
Cross Cumprod Cumsum CumulativeLogsumexp Digamma Div DivNoNan Equal Erf Erfc Erfinv EuclideanNorm Exp Expm1
Floor FloorDiv FloorMod Greater GreaterEqual Igamma Igammac Imag Inv Invert IsFinite IsInf IsNan LeftShift
Less LessEqual Lgamma Log Log1p LogicalAnd LogicalNot LogicalOr Max Maximum Mean Min Minimum Mod Mul MulNoNan
Ndtri Neg NextAfter NotEqual PopulationCount Pow Prod Real RealDiv Reciprocal RightShift Rint Round Rsqrt
Select SelectV2 Sigmoid Sign Sin Sinh Sqrt Square SquaredDifference Sub Sum Tan Tanh TruncateDiv TruncateMod
Xdivy Xlog1py Xlogy Zeta Polygamma
# neural network
AvgPool AvgPool3D BatchNormWithGlobalNormalization BiasAdd BiasAddV1 Conv Conv2D Conv3D Conv2DBackpropInput
Conv2DBackpropInputV2 Conv3DBackpropInputV2 DepthwiseConv2dNative DepthwiseConv2dNativeBackpropInput
Dilation2D Elu FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3 FusedPadConv2D FusedResizeAndPadConv2D
InTopK InTopKV2 L2Loss LRN LeakyRelu LogSoftmax MaxPool MaxPool3D MaxPoolV2 MaxPoolWithArgmax Relu Relu6 Selu
Softmax Softplus Softsign TopK TopKV2 NthElement BlockLSTM BlockLSTMV2 GRUBlockCell LSTMBlockCell
CTCGreedyDecoder CTCBeamSearchDecoder NonMaxSuppression NonMaxSuppressionV2 NonMaxSuppressionV3
NonMaxSuppressionV4 NonMaxSuppressionV5 NonMaxSuppressionWithOverlaps CombinedNonMaxSuppression
# linear algebra, signal
BatchMatMul BatchMatMulV2 BatchMatMulV3 Cholesky Einsum MatMul MatrixBandPart MatrixDeterminant MatrixDiag
MatrixDiagPart MatrixDiagPartV2 MatrixDiagPartV3 MatrixDiagV2 MatrixDiagV3 MatrixInverse MatrixSetDiag
MatrixSetDiagV2 MatrixSetDiagV3 MatrixSolve MatrixTriangularSolve LogMatrixDeterminant Qr Svd SelfAdjointEigV2
TridiagonalSolve FFT FFT2D FFT3D IFFT IFFT2D IFFT3D RFFT RFFT2D RFFT3D IRFFT IRFFT2D IRFFT3D
# shapes, indexing, data movement
BatchToSpace BatchToSpaceND Bitcast BroadcastArgs BroadcastGradientArgs BroadcastTo Bucketize Cast Concat
ConcatOffset ConcatV2 DataFormatDimMap DataFormatVecPermute DepthToSpace Diag DiagPart DynamicPartition
DynamicStitch ParallelDynamicStitch EnsureShape ExpandDims ExtractImagePatches ExtractVolumePatches Fill
Gather GatherNd GatherV2 HistogramFixedWidth Identity IdentityN InvertPermutation LinSpace ListDiff LowerBound
UpperBound MirrorPad OneHot OnesLike Pack Pad PadV2 Range Rank Reshape Reverse ReverseSequence ReverseV2 Roll
ScatterNd Shape ShapeN Size Slice SpaceToBatch SpaceToBatchND SpaceToDepth Split SplitV Squeeze StridedSlice
TensorScatterAdd TensorScatterMax TensorScatterMin TensorScatterSub TensorScatterUpdate TensorStridedSliceUpdate
Tile Transpose ConjugateTranspose Unique UniqueV2 UniqueWithCounts UniqueWithCountsV2 Unpack UnravelIndex
UnsortedSegmentMax UnsortedSegmentMin UnsortedSegmentProd UnsortedSegmentSum SegmentMax SegmentMean SegmentMin
SegmentProd SegmentSum Where ZerosLike Bincount DenseBincount
# images (in memory)
AdjustContrastv2 AdjustHue AdjustSaturation CropAndResize DecodeBmp DecodeGif DecodeImage DecodeJpeg
DecodeAndCropJpeg DecodePng DecodeWebP EncodeJpeg EncodePng ExtractJpegShape HSVToRGB RGBToHSV ResizeArea
ResizeBicubic ResizeBilinear ResizeNearestNeighbor ScaleAndTranslate ImageProjectiveTransformV2
ImageProjectiveTransformV3 DrawBoundingBoxes DrawBoundingBoxesV2
# quantization
Dequantize FakeQuantWithMinMaxArgs FakeQuantWithMinMaxVars FakeQuantWithMinMaxVarsPerChannel
QuantizeAndDequantize QuantizeAndDequantizeV2 QuantizeAndDequantizeV3 QuantizeAndDequantizeV4 QuantizeV2
UniformDequantize UniformQuantize UniformRequantize
# strings and parsing (in memory)
AsString DecodeBase64 EncodeBase64 DecodeRaw DecodePaddedRaw DecodeCSV DecodeJSONExample ParseExample
ParseExampleV2 ParseSingleExample ParseSequenceExample ParseSequenceExampleV2 ParseSingleSequenceExample
ParseTensor SerializeTensor ReduceJoin RegexFullMatch RegexReplace StaticRegexFullMatch StaticRegexReplace
StringFormat StringJoin StringLength StringLower StringNGrams StringSplit StringSplitV2 StringStrip
StringToHashBucket StringToHashBucketFast StringToHashBucketStrong StringToNumber StringUpper Substr
UnicodeDecode UnicodeDecodeWithOffsets UnicodeEncode UnicodeScript UnicodeTranscode Fingerprint
# ragged, sparse, lists (in memory)
RaggedGather RaggedRange RaggedTensorFromVariant RaggedTensorToSparse RaggedTensorToTensor RaggedTensorToVariant
SparseToDense SparseReshape SparseTensorDenseMatMul SparseFillEmptyRows SparseSegmentMean SparseSegmentSqrtN
SparseSegmentSum SparseSegmentMeanWithNumSegments SparseSegmentSqrtNWithNumSegments
SparseSegmentSumWithNumSegments SparseSlice SparseReorder SparseAdd SparseConcat SparseReduceSum SparseReduceMax
TensorListConcatV2 TensorListElementShape TensorListFromTensor TensorListGather TensorListGetItem TensorListLength
TensorListPopBack TensorListPushBack TensorListReserve TensorListResize TensorListScatterIntoExistingList
TensorListScatterV2 TensorListSetItem TensorListSplit TensorListStack EmptyTensorList
TensorArrayV3 TensorArrayReadV3 TensorArrayWriteV3 TensorArrayGatherV3 TensorArrayScatterV3 TensorArraySizeV3
TensorArrayConcatV3 TensorArraySplitV3 TensorArrayCloseV3 OptionalFromValue OptionalGetValue OptionalHasValue
OptionalNone
# random numbers (in process)
RandomStandardNormal RandomUniform RandomUniformInt TruncatedNormal Multinomial RandomShuffle RandomGamma
RandomPoissonV2 StatelessMultinomial StatelessRandomNormal StatelessRandomNormalV2 StatelessRandomUniform
StatelessRandomUniformV2 StatelessRandomUniformInt StatelessRandomUniformIntV2 StatelessRandomUniformFullInt
StatelessRandomUniformFullIntV2 StatelessTruncatedNormal StatelessTruncatedNormalV2 StatelessRandomGetKeyCounter
StatelessRandomGetKeyCounterAlg StatelessRandomGetAlg RngReadAndSkip RngSkip StatefulUniform
StatefulUniformInt StatefulUniformFullInt StatefulStandardNormalV2 StatefulTruncatedNormal
# the SavedModel's plumbing: constants, inputs, calls, control flow, variables, in-memory tables
Const HostConst Placeholder PlaceholderWithDefault PlaceholderV2 NoOp StopGradient PreventGradient CheckNumerics
CheckNumericsV2 Assert StatefulPartitionedCall PartitionedCall If StatelessIf While StatelessWhile Case
StatelessCase Enter Exit Merge Switch NextIteration LoopCond ControlTrigger VarHandleOp ReadVariableOp
AssignVariableOp AssignAddVariableOp AssignSubVariableOp VarIsInitializedOp DestroyResourceOp ResourceGather
ResourceGatherNd DisableCopyOnRead VariableShape Variable VariableV2 Assign AssignAdd AssignSub IsVariableInitialized
HashTableV2 MutableHashTableV2 MutableDenseHashTableV2 AnonymousHashTable AnonymousMutableHashTable
LookupTableFindV2 LookupTableImportV2 LookupTableSizeV2 LookupTableInsertV2 LookupTableExportV2
"""

ALLOWED = frozenset(w for line in _ALLOWED_TEXT.splitlines() if not line.startswith("#") for w in line.split())

# the checkpoint ops every TF2 SavedModel's save/restore functions hold: allowed there only (the saver
# functions the meta graph's saver_def names, which TF2 loading never calls; it restores variables itself)
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "SaveSlices",
                            "RestoreSlice", "Save", "Restore", "ShardedFilespec"})

# why a refused op is refused (the message's word); checked in order, first match wins
DENIED = (
    ("file system", re.compile(r"File|Files|Save|Restore|Checkpoint|ImmutableConst|Vocab|Reader|Record|Snapshot"
                               r"|LoadAndRemap|Sharded|Matching|Glob|Directory|TableFromText")),
    ("Python call", re.compile(r"^(PyFunc|PyFuncStateless|EagerPyFunc)$|Py[A-Z]")),
    ("network or other processes", re.compile(r"Rpc|Remote|Collective|Send|Recv|Nccl|DTensor|Grpc|Infeed|Outfeed"
                                               r"|Tpu|TPU|Xla|Mlir")),
    ("printing, logging or debugging output", re.compile(r"Print|Summary|Debug|^Copy|Timestamp")),
    ("datasets, queues or iterators (they read files)", re.compile(r"Dataset|Iterator|Queue|Barrier|Stage|Stack"
                                                                   r"|Accumulator|Unbatch|Batch(?!Mat|ToSpace|Norm)")),
    ("protocol buffers read by descriptor path", re.compile(r"Proto")),
)


def why_refused(op: str) -> str:
    for reason, pattern in DENIED:
        if pattern.search(op):
            return reason
    return "not on the allow-list of pure ops"
