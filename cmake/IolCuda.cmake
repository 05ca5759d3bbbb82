# Resolves IOL_CUDA (AUTO|ON|OFF) into IOL_HAVE_CUDA and enables the CUDA language when used.
string(TOUPPER "${IOL_CUDA}" IOL_CUDA)
set(IOL_HAVE_CUDA OFF)
if(IOL_CUDA STREQUAL "OFF")
  message(STATUS "iol: CUDA backend disabled (IOL_CUDA=OFF)")
elseif(IOL_CUDA STREQUAL "ON" OR IOL_CUDA STREQUAL "AUTO")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Architectures: the GPUs of this machine when it has any (`make bench` runs here), else the
    # H100/H200's 90a (wgmma, setmaxnreg) — a compile check where there is no GPU (CI), at a sixth
    # of the three-arch compile time (gemv.cu alone: 108 s for 90a, 679 s for 80;89;90a on 2 cores).
    # A portable build names them: -DCMAKE_CUDA_ARCHITECTURES="80;89;90a" (A100, L40S, H100/H200).
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      execute_process(COMMAND nvidia-smi -L RESULT_VARIABLE iol_smi_rc OUTPUT_VARIABLE iol_smi_out ERROR_QUIET)
      if(iol_smi_rc EQUAL 0 AND iol_smi_out MATCHES "GPU 0")
        set(CMAKE_CUDA_ARCHITECTURES native)
      else()
        set(CMAKE_CUDA_ARCHITECTURES 90a)
      endif()
    endif()
    # Kernels (.cu) are C++17: fmt's constexpr formatting does not survive nvcc's C++20 mode. The
    # backend's host code is C++20 (.cpp, g++) and reaches kernels through C++17-clean headers.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    # Static runtime: the binary built on Debian 12 runs unchanged on other distros with a driver.
    set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(IOL_HAVE_CUDA ON)
    message(STATUS "iol: CUDA backend enabled (${CMAKE_CUDA_COMPILER_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(IOL_CUDA STREQUAL "ON")
    message(FATAL_ERROR "iol: IOL_CUDA=ON but no CUDA compiler was found; install the CUDA toolkit or use -DIOL_CUDA=OFF")
  else()
    message(STATUS "iol: no CUDA compiler found; building the CPU backend only")
  endif()
else()
  message(FATAL_ERROR "iol: IOL_CUDA must be AUTO, ON or OFF (got '${IOL_CUDA}')")
endif()
