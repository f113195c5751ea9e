# Sourced by gpu_check.sh: where .whl holds a bundle (benchmarks/gpu_bundle.sh), install it once
# beside this machine's torch (into $DDEP_SITE, default /tmp/ddep-site; mmcv built there from its
# source) and put it and this checkout on PYTHONPATH. Without .whl it does nothing.
#   source benchmarks/gpu_env.sh
py=${PYTHON:-python3}
if [ -d .whl ]; then  # a bundle (gpu_bundle.sh): install it beside this machine's torch, once
  site=${DDEP_SITE:-/tmp/ddep-site}
  if [ ! -e "$site/.installed" ]; then
    start=$SECONDS
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
    sdist=$(ls .whl/mmcv-*.tar.gz)
    version=${sdist##*/mmcv-}
    bash build_mmcv.sh "$py" "${version%.tar.gz}" "$site/.wheels" "$sdist"
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$site"/.wheels/mmcv-*.whl
    touch "$site/.installed"
    echo ">> bundle installed in $site in $((SECONDS - start)) s"
  fi
  export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

