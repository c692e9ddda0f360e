# `lowbit eval` and `lowbit run` on the shipped ResNet-20 and on bad input: every failure is one
# line on stderr and exit status 1.
function(expect_failure what needle)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "${needle}")
    message(FATAL_ERROR "${what}: exit ${rc}, stderr: ${err}")
  endif()
  string(STRIP "${err}" stripped)
  string(FIND "${stripped}" "\n" newline)
  if(NOT newline EQUAL -1)
    message(FATAL_ERROR "${what}: the error is more than one line:\n${err}")
  endif()
endfunction()

execute_process(COMMAND ${LOWBIT} eval ${DATA}/models/resnet20_cifar10.onnx --limit 320 --threads 2
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "320 images from" OR NOT out MATCHES "top-1 [0-9.]+ %" OR NOT out MATCHES "images/s")
  message(FATAL_ERROR "lowbit eval: exit ${rc}\n${out}${err}")
endif()

# A class folder with an image that does not decode.
set(bad ${WORK}/eval_bad_image)
file(REMOVE_RECURSE ${bad})
file(MAKE_DIRECTORY ${bad}/airplane ${bad}/automobile)
file(COPY ${DATA}/cifar10/test/airplane/0000.jpg DESTINATION ${bad}/airplane)
file(COPY ${DATA}/cifar10/test/automobile/0000.jpg DESTINATION ${bad}/automobile)
file(WRITE ${bad}/automobile/0001.jpg "this is not a JPEG")
expect_failure("undecodable image" "0001.jpg" ${LOWBIT} eval ${DATA}/models/resnet20_cifar10.onnx --data ${bad})

# A labels file that names an image the folder does not hold.
set(lab ${WORK}/eval_bad_labels)
file(REMOVE_RECURSE ${lab})
file(MAKE_DIRECTORY ${lab}/images)
file(COPY ${DATA}/imagenet/val1300/images/ILSVRC2012_val_00000347.JPEG DESTINATION ${lab}/images)
file(WRITE ${lab}/labels.txt "ILSVRC2012_val_00000347.JPEG, 472\nILSVRC2012_val_99999999.JPEG, 3\n")
expect_failure("labels mismatch" "ILSVRC2012_val_99999999.JPEG" ${LOWBIT} eval ${DATA}/models/mobilenet_v1_0.75_224.onnx --data ${lab})

file(WRITE ${WORK}/eval_truncated.onnx "not a model")
expect_failure("truncated model" "eval_truncated.onnx: not a valid ONNX model" ${LOWBIT} eval ${WORK}/eval_truncated.onnx)
expect_failure("bad weight format" "invalid format 'int0'" ${LOWBIT} eval ${DATA}/models/resnet20_cifar10.onnx --w int0 --a int8)
file(WRITE ${WORK}/eval_recipe.json "{\"weights\": {\"format\": \"int8\"}, \"pases\": []}")
expect_failure("bad recipe" "unknown key 'pases'" ${LOWBIT} eval ${DATA}/models/resnet20_cifar10.onnx --recipe ${WORK}/eval_recipe.json)

# lowbit run on an ONNX conformance case prints the output it stores.
set(relu /usr/share/libonnx-testdata/data/node/test_relu)
execute_process(COMMAND ${LOWBIT} run ${relu}/model.onnx --input ${relu}/test_data_set_0/input_0.pb --output-dir ${WORK}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "y float32 \\[3,4,5\\]" OR NOT EXISTS ${WORK}/output_0.pb)
  message(FATAL_ERROR "lowbit run: exit ${rc}\n${out}${err}")
endif()
expect_failure("run with a wrong input" "has shape" ${LOWBIT} run ${DATA}/models/resnet20_cifar10.onnx --input ${relu}/test_data_set_0/input_0.pb)
