import pytest
import tensorflow as tf

from cpm import names
from cpm.model import count_parameters
from tests.helpers import build_model

# Parameters of the CPM release's deploy network (Wei et al. 2016, docs/references.md), weights + biases:
#   trunk (3x3 convs): conv1 1,792 + 36,928; conv2 73,856 + 147,584; conv3 295,168 + 3 x 590,080;
#     conv4_1 1,180,160; conv4_2 2,359,808; conv4_3_CPM 1,179,904; conv4_4-6_CPM 3 x 590,080;
#     conv4_7_CPM 295,040                                                              =  9,110,720
#   stage 1: conv5_1_CPM 1x1 128->512 66,048 + conv5_2_CPM 1x1 512->15 7,695          =     73,743
#   stages 2-6, each: Mconv1 7x7 144->128 903,296 + Mconv2-5 4 x 802,944
#     + Mconv6 1x1 16,512 + Mconv7 1x1 128->15 1,935 = 4,133,519; x 5                   = 20,667,595
#   total                                                                              = 29,852,058
PAPER_PARAMETERS = 9_110_720 + 73_743 + 5 * 4_133_519
# Two seed7 part stages (P = 6 parts -> 8 output channels) on the paper preset, same layers as a belief stage:
#   part1: conv1 7x7 (15 + 128 + 1)->128 903,296 + conv2-5 4 x 802,944 + conv6 16,512 + out 1x1 128->8 1,032
#          = 4,132,616
#   part2: conv1 7x7 (144 + 8 previous part logits)->128 953,472 + the same rest = 4,182,792
PART_PARAMETERS = 4_132_616 + 4_182_792


@pytest.mark.parametrize("preset, size", [("paper", 46), ("cpu", 23)])
def test_stage_shapes(preset, size):
    cfg, graph, cost = build_model(preset)
    for t in range(1, cfg.MODEL.STAGES + 1):
        assert graph.get_tensor_by_name(names.stage_beliefs(t) + ":0").shape.as_list() == [None, size, size, 15]
        assert graph.get_tensor_by_name(names.stage_loss(t) + ":0").shape.as_list() == []
    assert graph.get_tensor_by_name(names.FINAL_BELIEFS + ":0").shape.as_list() == [None, size, size, 15]
    assert cost.name == names.TOTAL_COST + ":0"


def test_paper_parameter_count():
    _, graph, _ = build_model("paper", **{"MODEL.PART_STAGES": 0})  # the release's network
    assert count_parameters(graph) == PAPER_PARAMETERS == 29_852_058
    _, graph, _ = build_model("paper")
    assert count_parameters(graph) == PAPER_PARAMETERS + PART_PARAMETERS == 38_167_466


def test_stage_count_and_widths_are_config_keys():
    _, graph, _ = build_model("cpu", **{"MODEL.STAGES": 3, "MODEL.STAGE_WIDTH": 16})
    names_in_graph = {op.name for op in graph.get_operations()}
    assert names.stage_beliefs(3) in names_in_graph and names.stage_beliefs(4) not in names_in_graph
    with graph.as_default():
        kernel = [v for v in tf.compat.v1.global_variables() if v.name == "stage2/conv1/W:0"][0]
    assert kernel.shape.as_list() == [7, 7, 15 + 32 + 1, 16]  # beliefs + cpu trunk features + centre map


def test_lsp_wide_is_lsp_fast_with_a_trunk_twice_as_wide():
    # lsp-fast's trunk (16, 32, 64, 64, 64, 32) against lsp-wide's (32, 64, 128, 128, 128, 64), 3x3 convs in -> out:
    #   2 (3->a, a->a), 2 (a->b, b->b), 4 (b->c, c->c x3), 2 (c->d, d->d), 4 (d->e, e->e x3), 1 (e->f)
    #   kernels 9 * sum(in * out): 1,539,936 - 385,200 = 1,154,736; batch norm gamma + beta 2 x (1,536 - 768) = 1,536
    #   stage 1's 1x1 conv (f -> 128): 32 x 128 = 4,096
    #   stages 2-6's first 7x7 conv (15 beliefs + f + 1 centre map -> 64): 5 x 49 x 32 x 64 = 501,760
    _, fast, _ = build_model("lsp-fast")
    _, wide, _ = build_model("lsp-wide")
    assert count_parameters(wide) - count_parameters(fast) == 1_154_736 + 1_536 + 4_096 + 501_760 == 1_662_128
    assert count_parameters(fast) == 5_188_938  # benchmark.py's figure for the preset (docs/recipe.md, round 4)
