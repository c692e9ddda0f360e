# `lowbit quantize` on the shipped ResNet-20: both exports written (with their model cards, so that
# `lowbit eval` runs them as they are), a per-layer table printed, and bad recipes refused in one line.
function(expect_failure what needle)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "${needle}")
    message(FATAL_ERROR "${what}: exit ${rc}, stderr: ${err}")
  endif()
endfunction()

set(model ${DATA}/models/resnet20_cifar10.onnx)
set(out ${WORK}/quantize_cli)
file(REMOVE_RECURSE ${out})
file(WRITE ${out}/int8.json [=[{"weights": {"format": "int8"}, "activations": {"format": "int8"}, "calibration": {"images": 64}}]=])
execute_process(COMMAND ${LOWBIT} quantize ${model} --recipe ${out}/int8.json -o ${out}/models/r20 --threads 2
                RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT stdout MATCHES "scale rule" OR NOT stdout MATCHES "layer3.2.conv2" OR NOT stdout MATCHES "r20.qdq.onnx \\(ONNX QDQ\\)")
  message(FATAL_ERROR "lowbit quantize: exit ${rc}\n${stdout}${err}")
endif()
foreach(f r20.qonnx.onnx r20.qonnx.onnx.card.json r20.qdq.onnx r20.qdq.onnx.card.json)
  if(NOT EXISTS ${out}/models/${f})
    message(FATAL_ERROR "lowbit quantize did not write ${f}")
  endif()
endforeach()

# The QDQ export evaluates through its card; --dump-inputs writes what it fed.
execute_process(COMMAND ${LOWBIT} eval ${out}/models/r20.qdq.onnx --limit 64 --threads 2 --dump-inputs ${out}/dump
                RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT stdout MATCHES "64 images from" OR NOT stdout MATCHES "top-1 [0-9.]+ %")
  message(FATAL_ERROR "lowbit eval of the QDQ export: exit ${rc}\n${stdout}${err}")
endif()
file(SIZE ${out}/dump/inputs.f32 input_bytes)
file(SIZE ${out}/dump/labels.i32 label_bytes)
file(READ ${out}/dump/inputs.json shape)
if(NOT input_bytes EQUAL 786432 OR NOT label_bytes EQUAL 256 OR NOT shape MATCHES "\"images\": 64, \"image_shape\": \\[3, 32, 32\\]")
  message(FATAL_ERROR "--dump-inputs wrote ${input_bytes} / ${label_bytes} bytes, ${shape}")
endif()

# Minifloat activations have no QDQ form: said, and the QONNX file is still written.
file(WRITE ${out}/fp8.json [=[{"weights": {"format": "int8"}, "activations": {"format": "e4m3"}, "calibration": {"images": 32}}]=])
execute_process(COMMAND ${LOWBIT} quantize ${model} --recipe ${out}/fp8.json -o ${out}/fp8 --threads 2
                RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT stdout MATCHES "no ONNX QDQ form: .*8-bit integer" OR NOT EXISTS ${out}/fp8.qonnx.onnx OR EXISTS ${out}/fp8.qdq.onnx)
  message(FATAL_ERROR "lowbit quantize (e4m3): exit ${rc}\n${stdout}${err}")
endif()

file(WRITE ${out}/unknown_pass.json [=[{"weights": {"format": "int8"}, "passes": [{"name": "sparkle"}]}]=])
expect_failure("unknown pass" "unknown pass 'sparkle'" ${LOWBIT} quantize ${model} --recipe ${out}/unknown_pass.json -o ${out}/x)
file(WRITE ${out}/gptq_mx.json [=[{"weights": {"format": "int4"}, "layers": [{"op": "Gemm", "weights": {"format": "mxfp4"}}], "passes": [{"name": "gptq"}]}]=])
expect_failure("gptq on a block format" "gptq learns the rounding of scalar formats; block.e2m1" ${LOWBIT} quantize ${model} --recipe ${out}/gptq_mx.json -o ${out}/x)
expect_failure("recipe and formats" "either --recipe or --w" ${LOWBIT} quantize ${model} --recipe ${out}/int8.json --w int4 -o ${out}/x)
expect_failure("no recipe" "give a recipe" ${LOWBIT} quantize ${model} -o ${out}/x)
